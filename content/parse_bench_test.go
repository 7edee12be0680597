package content_test

import (
	"testing"

	"github.com/quizstream/quizstream/content"
)

// What parsing and validating the demo file costs (every seed and every
// `quizstream dev` start does it).
func BenchmarkParseDemo(b *testing.B) {
	b.SetBytes(int64(len(content.Demo())))
	for b.Loop() {
		if _, err := content.Parse(content.Demo()); err != nil {
			b.Fatal(err)
		}
	}
}
