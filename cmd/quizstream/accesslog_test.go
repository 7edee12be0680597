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
func TestAccessLogSettings(t *testing.T) {
	for level, want := range map[string]slog.Leveler{"": nil, "info": slog.LevelInfo, "warn": slog.LevelWarn, "off": api.AccessLogOff} {
		env := map[string]string{"ACCESS_LOG_LEVEL": level, "ACCESS_LOG_SAMPLE": "0.25"}
		var c config
		f := newFlags("api", func(k string) string { return env[k] }, io.Discard)
		f.common(&c)
		f.api(&c)
		_, err := setup(f, &c, nil, "api", io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", level, err)
		}
		if level == "" {
			want = slog.LevelDebug // the setting's default
		}
		if c.API.AccessLogLevel == nil || c.API.AccessLogLevel.Level() != want.Level() || c.API.AccessLogSample != 0.25 {
			t.Errorf("%q: level %v, sample %v", level, c.API.AccessLogLevel, c.API.AccessLogSample)
		}
	}
	var c config
	f := newFlags("api", func(k string) string { return map[string]string{"ACCESS_LOG_LEVEL": "loud"}[k] }, io.Discard)
	f.common(&c)
	f.api(&c)
	if _, err := setup(f, &c, nil, "api", io.Discard); err == nil || !strings.Contains(err.Error(), "ACCESS_LOG_LEVEL") {
		t.Errorf("a bad level: %v", err)
	}
}
