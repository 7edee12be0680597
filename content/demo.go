package content

import _ "embed"

// demo is the demo content (store.DemoContent(store.DefaultDemo)) as a
// content file; TestDemoFile keeps the two equal, ids included.
//
//go:embed demo.json
var demo []byte

// Demo returns the demo content file that `quizstream seed` imports: 20
// courses of 10 quizzes of 10 questions of 4 choices, and two timed
// quizzes at the end of the last course. Its ids are derived from names
// (store.DemoContent), so every database seeded with it holds the same.
func Demo() []byte { return demo }
