package app

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version overrides the module version of the build info when a build sets
// it: go build -ldflags "-X github.com/quizstream/quizstream/app.version=v1.2.3".
var version string

// commit overrides the VCS revision of the build info, for builds made
// without the repository's history (a container build):
// -X github.com/quizstream/quizstream/app.commit=abc123.
var commit string

// BuildInfo says which build of quizstream runs.
type BuildInfo struct {
	// Version is the module's version ("(devel)" for a build from a work
	// tree without version control), or what -ldflags set.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, with
	// "-modified" when the work tree had changes; "unknown" without one.
	Commit string `json:"commit"`
	// Go is the version of the Go toolchain that built it.
	Go string `json:"go"`
}

// ReadBuildInfo returns what the binary records of its build
// (runtime/debug.ReadBuildInfo); fields it cannot tell are "unknown".
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: "unknown", Commit: "unknown", Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			b.Version = info.Main.Version
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && b.Commit != "unknown" {
			b.Commit += "-modified"
		}
	}
	if version != "" {
		b.Version = version
	}
	if commit != "" {
		b.Commit = commit
	}
	return b
}

// buildInfoCollector is quizstream_build_info{version,commit,go}, always 1:
// a dashboard joins on it to tell which build each process runs.
func buildInfoCollector() prometheus.Collector {
	b := ReadBuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "quizstream_build_info",
		Help:        "Which build of quizstream this process runs; always 1.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "go": b.Go},
	})
	g.Set(1)
	return g
}
