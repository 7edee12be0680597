package load

import (
	"fmt"
	"testing"
)

// The answers a session may hold: the highest seq answered 202, whatever
// order saves were sent in; a save refused is none; a save of unknown
// outcome above it may win too.
func TestWantAnswers(t *testing.T) {
	got := wantAnswers(map[string][]sentSave{
		"q1": {{seq: 3, choice: "b"}, {seq: 5, choice: "c"}, {seq: 4, choice: "a"}},
		"q2": {{seq: 1, choice: "a"}, {seq: 2, choice: ""}},
		"q3": {{seq: 1, choice: "a", outcome: saveRefused}},
		"q4": {{seq: 1, choice: "a"}, {seq: 2, choice: "b", outcome: saveUnknown}, {seq: 7, choice: "c", outcome: saveRefused}},
		"q5": {{seq: 2, choice: "a", outcome: saveUnknown}},
	})
	want := map[string]string{"q1": "[c]", "q2": "[]", "q3": "[" + absent + "]", "q4": "[a b]", "q5": "[" + absent + " a]"}
	for q, w := range want {
		if g := fmt.Sprint(sortedKeys(got[q])); g != w {
			t.Errorf("%s: may hold %q, want %q", q, g, w)
		}
	}
	if score := grade(map[string]string{"q1": "c", "q2": "a", "q3": "x"}, map[string]string{"q1": "c", "q2": "", "q4": "a"}); score != 1 {
		t.Errorf("grade: %d, want 1 (a cleared answer scores nothing)", score)
	}
}
