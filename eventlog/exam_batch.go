package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Under a server that syncs every write, each publish costs a disk sync:
// an exam-start surge (a timer and a start per student) would be bound by
// the disk. An examPublisher gathers the publishes made at the same time
// into atomic batch publishes (server 2.12+), a few syncs per batch, and
// answers each from its position in the batch's PubAck. Every message of
// an exams stream carries its own guard (a compare-and-set, a message id)
// and a batch is all or nothing: a refused batch is published again one
// message at a time, so that each gets its own answer. It keeps no
// goroutine of its own: the first caller of a round gathers it and sends
// it, the others wait for their answer.

// Headers of an atomic batch publish.
const (
	examBatchIDHeader     = "Nats-Batch-Id"
	examBatchSeqHeader    = "Nats-Batch-Sequence"
	examBatchCommitHeader = "Nats-Batch-Commit"
)

// Sizing of exam publish batches.
const (
	examBatchWindow   = time.Millisecond
	examBatchMax      = 500 // below the server's max_batch_size (1000)
	examBatchMin      = 4   // fewer are published one at a time
	examBatchInflight = 2   // per stream and instance; the server allows 50 per stream
	examBatchTimeout  = 5 * time.Second
)

// examPublisher publishes messages to one stream, batched.
type examPublisher struct {
	js       jetstream.JetStream
	nc       *nats.Conn
	stream   string
	batching bool
	slots    chan struct{}

	mu        sync.Mutex
	queue     []*examPending
	gathering bool
	full      chan struct{} // closed when the queue reaches examBatchMax
}

type examPending struct {
	msg  *nats.Msg
	done chan examOutcome // buffered
}

type examOutcome struct {
	ack *jetstream.PubAck
	err error
}

func newExamPublisher(js jetstream.JetStream, s jetstream.Stream) *examPublisher {
	return &examPublisher{js: js, nc: js.Conn(), stream: s.CachedInfo().Config.Name,
		batching: s.CachedInfo().Config.AllowAtomicPublish, slots: make(chan struct{}, examBatchInflight)}
}

// publish stores m in the stream and returns its PubAck, or the server's
// refusal (a *jetstream.APIError), or an error after which the outcome is
// unknown.
func (p *examPublisher) publish(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	if !p.batching {
		return p.js.PublishMsg(ctx, m)
	}
	me := &examPending{msg: m, done: make(chan examOutcome, 1)}
	p.mu.Lock()
	p.queue = append(p.queue, me)
	lead := !p.gathering
	if lead {
		p.gathering, p.full = true, make(chan struct{})
	} else if len(p.queue) == examBatchMax {
		close(p.full) // reached once per channel: lead replaces it as it takes the queue
	}
	full := p.full
	p.mu.Unlock()
	if lead {
		p.lead(full)
	}
	select {
	case o := <-me.done:
		return o.ack, o.err
	case <-ctx.Done():
		return nil, fmt.Errorf("publish: %w", ctx.Err()) // the batch may still store it
	}
}

// lead gathers a round for the window (or until it is full), waits for a
// free slot (gathering on meanwhile), then sends what it gathered; when
// more than a batch gathered, it sends the rest too, batch after batch.
func (p *examPublisher) lead(full chan struct{}) {
	t := time.NewTimer(examBatchWindow)
	select {
	case <-t.C:
	case <-full:
		t.Stop()
	}
	p.slots <- struct{}{}
	defer func() { <-p.slots }()
	for {
		p.mu.Lock()
		n := min(len(p.queue), examBatchMax)
		batch := p.queue[:n:n]
		p.queue = p.queue[n:]
		p.full = make(chan struct{}) // the taken queue's is closed, or never will be
		if len(p.queue) == 0 {
			p.gathering = false // the next call starts the next round
		}
		p.mu.Unlock()
		if n == 0 {
			return
		}
		// Batches outlive the calls that filled them.
		ctx, cancel := context.WithTimeout(context.Background(), examBatchTimeout)
		p.send(ctx, batch)
		cancel()
	}
}

// send publishes batch and answers every call in it.
func (p *examPublisher) send(ctx context.Context, batch []*examPending) {
	if len(batch) < examBatchMin {
		p.each(ctx, batch)
		return
	}
	last, err := p.commit(ctx, batch)
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		seq := last - uint64(len(batch))
		for _, b := range batch {
			seq++
			b.done <- examOutcome{ack: &jetstream.PubAck{Stream: p.stream, Sequence: seq}}
		}
	case errors.As(err, &apiErr):
		// Refused whole (a guard failed, or batches are disabled): each
		// alone gets its own answer.
		p.each(ctx, batch)
	default:
		for _, b := range batch {
			b.done <- examOutcome{err: err}
		}
	}
}

// each publishes batch one message at a time, concurrently.
func (p *examPublisher) each(ctx context.Context, batch []*examPending) {
	var wg sync.WaitGroup
	for _, b := range batch {
		wg.Go(func() {
			ack, err := p.js.PublishMsg(ctx, b.msg)
			b.done <- examOutcome{ack, err}
		})
	}
	wg.Wait()
}

type examBatchAck struct {
	Seq   uint64              `json:"seq"`
	Batch string              `json:"batch"`
	Count int                 `json:"count"`
	Error *jetstream.APIError `json:"error"`
}

// commit publishes batch as one atomic batch and returns the sequence of
// its last message; a refusal is a *jetstream.APIError, after which the
// stream holds none of it.
func (p *examPublisher) commit(ctx context.Context, batch []*examPending) (uint64, error) {
	id := uuid.NewString()
	for i, b := range batch {
		m := &nats.Msg{Subject: b.msg.Subject, Data: b.msg.Data, Header: nats.Header{}}
		for k, v := range b.msg.Header {
			m.Header[k] = v
		}
		m.Header.Set(examBatchIDHeader, id)
		m.Header.Set(examBatchSeqHeader, strconv.Itoa(i+1))
		if i < len(batch)-1 {
			if err := p.nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("publish batch: %w", err)
			}
			continue
		}
		m.Header.Set(examBatchCommitHeader, "1")
		resp, err := p.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return 0, fmt.Errorf("commit batch: %w", err)
		}
		var ack examBatchAck
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return 0, fmt.Errorf("commit batch: %w", err)
		}
		if ack.Error != nil {
			return 0, fmt.Errorf("commit batch: %w", ack.Error)
		}
		if ack.Batch != id || ack.Count != len(batch) || ack.Seq < uint64(len(batch)) {
			return 0, fmt.Errorf("commit batch %s of %d: unexpected PubAck %s", id, len(batch), resp.Data)
		}
		return ack.Seq, nil
	}
	return 0, errors.New("commit batch: no messages")
}
