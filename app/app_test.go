package app_test

import (
	"testing"

	"github.com/quizstream/quizstream/app"
)

func TestAtLeast(t *testing.T) {
	for v, want := range map[string]bool{
		"2.12.3": true, "v2.12.3": true, "2.12.4": true, "2.13.0": true, "3.0.0": true, "2.15.2": true,
		"2.12.2": false, "2.9.10": false, "2.11.99": false, "1.99.0": false, "": false,
		"2.12.3-RC.1": true,
	} {
		if got := app.AtLeast(v, 2, 12, 3); got != want {
			t.Errorf("AtLeast(%q, 2.12.3) = %v, want %v", v, got, want)
		}
	}
}
