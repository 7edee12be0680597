package worker

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	messages           *prometheus.CounterVec
	retries            prometheus.Counter
	batchSeconds       *prometheus.HistogramVec
	batchSize          *prometheus.HistogramVec
	deadLetterFailures prometheus.Counter
	handedBack         *prometheus.CounterVec
	folds              *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_worker_messages_total",
			Help: "Messages settled by the workers, by event family and result: stored (new row), duplicate (stored before, or superseded), poison (terminated), held (poison left unacknowledged: its dead letter could not be written), newer_schema (handed back for a newer worker).",
		}, []string{"family", "result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quizstream_worker_write_retries_total",
			Help: "Batch writes retried after a failure.",
		}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quizstream_worker_batch_duration_seconds",
			Help:    "Time from fetch to ack of one batch, retries included, by event family.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"family"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quizstream_worker_batch_messages",
			Help:    "Messages per fetched batch, by event family.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}, []string{"family"}),
		deadLetterFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quizstream_worker_dead_letter_failures_total",
			Help: "Poison messages whose dead-letter copy could not be written (the dead-letter stream full or missing): left unacknowledged.",
		}),
		handedBack: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_worker_batches_handed_back_total",
			Help: "Batches handed back (Nak) unstored, by event family and reason: hold (held past MAX_BATCH_HOLD), shutdown.",
		}, []string{"family", "reason"}),
		folds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quizstream_worker_readmodel_folds_total",
			Help: "Events folded into the read model by result: folded, skipped (folded before), reseeded (a value built again from PostgreSQL), conflict (a lost compare-and-set, retried).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	// Workers of one process share one registry: the second one to
	// register counts into the first one's collectors.
	var err error
	if m.messages, err = register(reg, m.messages); err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	if m.batchSeconds, err = register(reg, m.batchSeconds); err != nil {
		return nil, err
	}
	if m.batchSize, err = register(reg, m.batchSize); err != nil {
		return nil, err
	}
	if m.deadLetterFailures, err = register(reg, m.deadLetterFailures); err != nil {
		return nil, err
	}
	if m.handedBack, err = register(reg, m.handedBack); err != nil {
		return nil, err
	}
	if m.folds, err = register(reg, m.folds); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
