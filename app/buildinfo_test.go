package app_test

import (
	"testing"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/streams"
	"github.com/quizstream/quizstream/worker"
)

// Every role's registry carries quizstream_build_info{version,commit,go}
// at 1, with what the binary records of its build.
func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	want := app.ReadBuildInfo()
	if want.Go == "" || want.Version == "" || want.Commit == "" {
		t.Fatalf("ReadBuildInfo() = %+v, want every field set", want)
	}
	for role, in := range map[string]*apptest.Instance{
		"api":    s.StartAPI(t, api.Config{}),
		"worker": s.StartWorker(t, worker.Config{}),
	} {
		families, err := in.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range families {
			if f.GetName() != "quizstream_build_info" {
				continue
			}
			found = true
			m := f.GetMetric()
			if len(m) != 1 || m[0].GetGauge().GetValue() != 1 {
				t.Fatalf("%s: quizstream_build_info = %v, want one series at 1", role, m)
			}
			got := map[string]string{}
			for _, l := range m[0].GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) != 3 || got["version"] != want.Version || got["commit"] != want.Commit || got["go"] != want.Go {
				t.Errorf("%s: labels %v, want %+v", role, got, want)
			}
		}
		if !found {
			t.Errorf("%s: no quizstream_build_info on the registry", role)
		}
	}
}
