package events_test

import (
	"testing"

	"github.com/quizstream/quizstream/events"
)

// BenchmarkDecode is the decoding every worker and API tail does per event.
func BenchmarkDecode(b *testing.B) {
	data, err := events.Encode(fuzzSeedEvent())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := events.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
