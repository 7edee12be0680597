package deploy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// rules reads the alert rules.
func rules(t *testing.T) []struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
} {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	raw, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var out []struct {
		Alert       string            `yaml:"alert"`
		Expr        string            `yaml:"expr"`
		Annotations map[string]string `yaml:"annotations"`
	}
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// slug is a Markdown heading's anchor as GitHub makes it.
func slug(heading string) string {
	s := strings.ToLower(strings.TrimSpace(heading))
	s = regexp.MustCompile("[^a-z0-9 _-]").ReplaceAllString(s, "")
	return strings.ReplaceAll(s, " ", "-")
}

// Every alert links a section of docs/operations.md that exists, and has
// a promtool test case (alerts_test.yml names every alert).
func TestAlertsHaveRunbooksAndTests(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,4} (.+)$`).FindAllStringSubmatch(string(doc), -1) {
		anchors[slug(m[1])] = true
	}
	tests, err := os.ReadFile("prometheus/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	rs := rules(t)
	if len(rs) < 15 {
		t.Fatalf("%d rules", len(rs))
	}
	for _, r := range rs {
		u := r.Annotations["runbook_url"]
		_, anchor, ok := strings.Cut(u, "docs/operations.md#")
		if !ok || !anchors[anchor] {
			t.Errorf("%s: runbook %q is no section of docs/operations.md", r.Alert, u)
		}
		if !regexp.MustCompile(`alertname: ` + r.Alert + `\n\s+exp_alerts: \[\{`).Match(tests) {
			t.Errorf("%s: no promtool case where it fires", r.Alert)
		}
	}
}
