package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/quizstream/quizstream/api"
)

// ACCESS_LOG_LEVEL and ACCESS_LOG_SAMPLE reach the API's Config; a level
// that is none is an error naming the variable.
func TestAccessLogSettings(t *testing.T) { // not parallel: it sets the environment
	for level, want := range map[string]slog.Leveler{"": nil, "info": slog.LevelInfo, "warn": slog.LevelWarn, "off": api.AccessLogOff} {
		t.Setenv("ACCESS_LOG_LEVEL", level)
		t.Setenv("ACCESS_LOG_SAMPLE", "0.25")
		var c config
		f := flagsOf(t, "api", &c)
		if err := f.parse(nil); err != nil {
			t.Fatalf("%q: %v", level, err)
		}
		if _, err := newLogger(&c, io.Discard); err != nil {
			t.Fatalf("%q: %v", level, err)
		}
		if level == "" {
			want = slog.LevelDebug // the setting's default
		}
		if c.API.AccessLogLevel == nil || c.API.AccessLogLevel.Level() != want.Level() || c.API.AccessLogSample != 0.25 {
			t.Errorf("%q: level %v, sample %v", level, c.API.AccessLogLevel, c.API.AccessLogSample)
		}
	}
	t.Setenv("ACCESS_LOG_LEVEL", "loud")
	var c config
	f := flagsOf(t, "api", &c)
	if err := f.parse(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := newLogger(&c, io.Discard); err == nil || !strings.Contains(err.Error(), "ACCESS_LOG_LEVEL") {
		t.Errorf("a bad level: %v", err)
	}
}
