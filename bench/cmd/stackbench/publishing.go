package main

// publishMetrics are the API's counters of how it published attempts.
var publishMetrics = []string{
	"quizstream_publish_batch_size_messages_sum", "quizstream_publish_batch_size_messages_count",
	"quizstream_publish_unbatched_attempts_total", "quizstream_publish_batch_resends_total",
	"quizstream_publish_held_duplicates_total", "quizstream_publish_recent_id_alone_total",
}

// publishing is how the API published attempts during a run.
type publishing struct {
	Batches   float64 `json:"atomic_batches"`
	InBatches float64 `json:"attempts_in_batches"`
	MeanBatch float64 `json:"mean_batch"`
	Unbatched float64 `json:"attempts_one_at_a_time"`
	Resends   float64 `json:"batch_resends"`
	// Held are retries the API's tail answered without a publish; Alone
	// messages sent alone because the publisher sent their id lately.
	Held  float64 `json:"held_duplicates"`
	Alone float64 `json:"recent_id_alone"`
}

func publishingBetween(before, after map[string]float64) *publishing {
	if len(after) == 0 {
		return nil // an API without a batching publisher
	}
	d := func(k string) float64 { return after[k] - before[k] }
	p := &publishing{
		Batches: d("quizstream_publish_batch_size_messages_count"), InBatches: d("quizstream_publish_batch_size_messages_sum"),
		Unbatched: d("quizstream_publish_unbatched_attempts_total"), Resends: d("quizstream_publish_batch_resends_total"),
		Held: d("quizstream_publish_held_duplicates_total"), Alone: d("quizstream_publish_recent_id_alone_total"),
	}
	if p.Batches > 0 {
		p.MeanBatch = p.InBatches / p.Batches
	}
	return p
}
