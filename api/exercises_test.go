package api

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/quizstream/quizstream/store"
)

// TestSnapshotHidesHiddenTests: no body of the snapshot holds a hidden
// test case's input or output, and an exercise's examples are exactly its
// shown test cases.
func TestSnapshotHidesHiddenTests(t *testing.T) {
	courses := store.DemoContent(store.DemoSize{Courses: 2, Quizzes: 1, Questions: 1, Choices: 2, Exercises: true})
	snap, err := buildSnapshot(courses)
	if err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	bodies = append(bodies, snap.courseList.identity.body)
	for _, r := range snap.courses {
		bodies = append(bodies, r.identity.body)
	}
	hidden := 0
	for _, e := range courses[0].Exercises {
		key, ok := snap.exercises[e.ID]
		if !ok {
			t.Fatalf("exercise %s not in the snapshot", e.ID)
		}
		bodies = append(bodies, key.res.identity.body)
		var got exerciseJSON
		if err := json.Unmarshal(key.res.identity.body, &got); err != nil {
			t.Fatal(err)
		}
		var want []exampleJSON
		for _, tc := range e.Tests {
			if !tc.Hidden {
				want = append(want, exampleJSON{Stdin: tc.Stdin, Stdout: tc.Stdout})
			}
		}
		if len(got.Examples) != len(want) {
			t.Fatalf("exercise %s: %d examples, want the %d shown test cases", e.ID, len(got.Examples), len(want))
		}
		for i := range want {
			if got.Examples[i] != want[i] {
				t.Fatalf("exercise %s example %d = %+v, want %+v", e.ID, i, got.Examples[i], want[i])
			}
		}
		if !key.allows(e.Languages[0]) || key.allows("cobol") {
			t.Fatalf("exercise %s allows the wrong languages", e.ID)
		}
	}
	for _, e := range courses[0].Exercises {
		for _, tc := range e.Tests {
			if !tc.Hidden {
				continue
			}
			hidden++
			for _, b := range bodies {
				for _, s := range []string{tc.Stdin, tc.Stdout} {
					enc, _ := json.Marshal(s)
					if bytes.Contains(b, enc) {
						t.Fatalf("a content body holds hidden test text %s: %s", enc, b)
					}
				}
			}
		}
	}
	if hidden == 0 {
		t.Fatal("the demo exercises have no hidden test case to look for")
	}
}
