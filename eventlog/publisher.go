package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// Every event family publishes through one Publisher per stream. Under a
// server that syncs every write, each publish costs a disk sync; a
// Publisher gathers the publishes made at the same time into atomic batch
// publishes (server 2.12+), a few syncs per batch, and answers each call
// from its position in the batch's PubAck. A batch is all or nothing: one
// refused because a message failed its guard (a duplicate, a lost
// compare-and-set) is sifted by the family (Sift), and what the family
// cannot settle is published one message at a time, each getting the
// server's own answer.

// Headers of an atomic batch publish (server 2.12+), which nats.go has no
// API for: every message names its batch and its position in it, and the
// last one commits the batch.
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// Limits of the pinned server (its defaults; an operator can lower them in
// the server's JetStream limits).
const (
	serverMaxBatchMessages = 1000 // max_batch_size
	serverMaxBatchInflight = 50   // max_batch_inflight_per_stream, across all publishers
)

// JetStream error codes of atomic batch publishes that nats.go does not name.
const (
	errCodeDuplicateInProcess   jetstream.ErrorCode = 10158 // clustered: the original is not applied yet
	errCodeAtomicDisabled       jetstream.ErrorCode = 10174
	errCodeAtomicTooLarge       jetstream.ErrorCode = 10199 // above the server's max_batch_size
	errCodeAtomicDuplicateMsgID jetstream.ErrorCode = 10201
)

// maxResends bounds how often one batch is sent again without the messages
// Sift settled; past it the rest are published one at a time.
const maxResends = 3

// Defaults of BatchConfig, named once: the binary's settings use them too.
const (
	DefaultBatchWindow      = time.Millisecond
	DefaultBatchMaxMessages = 500
	DefaultBatchMinMessages = 8
	DefaultBatchMaxInflight = 2
	DefaultBatchTimeout     = 5 * time.Second
)

// BatchConfig sizes the coalescing of a Publisher (and of the attempts'
// Batcher, which publishes through one).
type BatchConfig struct {
	// Window is the longest a publish waits for others to join its batch.
	// A batch leaves as soon as it holds MaxMessages; while MaxInflight
	// batches await their PubAck it keeps gathering. Defaults to 1ms.
	Window time.Duration
	// MaxMessages bounds the messages in one batch, at most 1000 (the
	// server's default max_batch_size; a server limited below it gets
	// each message alone). A batch costs the server a fixed few
	// milliseconds (it stages the batch in a store of its own) plus a
	// little per message, so large batches pay. Defaults to 500.
	MaxMessages int
	// MinMessages is the smallest batch sent as one: fewer messages are
	// published one at a time (concurrently), which costs the server less
	// than the fixed cost of a batch. Defaults to 8, or MaxMessages when
	// that is smaller.
	MinMessages int
	// MaxInflight bounds the batches awaiting their PubAck at once. The
	// server commits a stream's batches one after the other, so a second
	// one only hides the round trip, and more split the waiting messages
	// into smaller batches. The server accepts at most 50 batches in
	// flight per stream from all publishers together: keep MaxInflight x
	// publishers below 50. Defaults to 2.
	MaxInflight int
	// Timeout bounds the publishing of one batch: its PubAck, and the
	// sifting and re-sends a refusal costs. Defaults to 5s.
	Timeout time.Duration
	// Index, for the attempts' Batcher only, is asked before publishing:
	// an attempt it holds is answered from it as a duplicate, without a
	// publish; and when a batch is refused for holding a duplicate, it
	// names the attempts the stream holds without a lookup each. The
	// API's Tail is one.
	Index Index
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *BatchConfig) validate() error {
	if c.Window <= 0 {
		c.Window = DefaultBatchWindow
	}
	if c.MaxMessages <= 0 {
		c.MaxMessages = DefaultBatchMaxMessages
	}
	if c.MinMessages <= 0 {
		c.MinMessages = min(DefaultBatchMinMessages, c.MaxMessages)
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = DefaultBatchMaxInflight
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultBatchTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxMessages > serverMaxBatchMessages:
		return fmt.Errorf("eventlog: BatchConfig.MaxMessages must be at most %d, not %d", serverMaxBatchMessages, c.MaxMessages)
	case c.MinMessages > c.MaxMessages:
		return fmt.Errorf("eventlog: BatchConfig.MinMessages (%d) must not exceed MaxMessages (%d)", c.MinMessages, c.MaxMessages)
	case c.MaxInflight >= serverMaxBatchInflight:
		return fmt.Errorf("eventlog: BatchConfig.MaxInflight must be below %d, not %d", serverMaxBatchInflight, c.MaxInflight)
	}
	return nil
}

// Sift is a family's answer to a batch refused for a failed guard: for
// each message the stream already holds an equivalent of (a duplicate) it
// returns the PubAck of that original (Duplicate set), or an error when
// the lookup failed; nil for a message it cannot settle. Settled messages
// are answered so, and the rest go again as a batch; when it settles none
// every message is published on its own.
type Sift func(ctx context.Context, refused []*nats.Msg) []*Settled

// Settled is what Sift knows of one refused message.
type Settled struct {
	Ack *jetstream.PubAck
	Err error
}

// ErrClosed is what Publish returns once its Publisher is closed.
var ErrClosed = errors.New("eventlog: publisher closed")

// Publisher publishes messages to one stream, gathering concurrent calls
// into atomic batches. On a stream that does not allow atomic publishes
// (or past a server limit) it publishes one message at a time. It is safe
// for concurrent use; Close stops it.
type Publisher struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	name    string
	cfg     BatchConfig
	sift    Sift
	maxData int
	base    context.Context
	metrics *BatchCollector
	recent  *recent

	batching atomic.Bool
	tooLarge atomic.Bool // warned that the server refuses batches this large
	reqs     chan *request
	batches  chan []*request
	quit     chan struct{}
	closing  sync.Once
	wg       sync.WaitGroup
}

// NewPublisher reads the configuration of the stream named stream and
// returns a Publisher into it, labelled family (and stream) in its
// metrics, or the
// error of the lookup or of cfg. sift may be nil. ctx bounds the lookup;
// the Publisher runs until Close.
func NewPublisher(ctx context.Context, js jetstream.JetStream, stream, family string, cfg BatchConfig, sift Sift) (*Publisher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info := s.CachedInfo()
	nc := js.Conn()
	maxData := int(nc.MaxPayload())
	if m := int(info.Config.MaxMsgSize); m > 0 {
		maxData = min(maxData, m)
	}
	p := &Publisher{
		js: js, nc: nc, name: info.Config.Name, cfg: cfg, sift: sift,
		// Headers count toward both limits: leave them room, so that one
		// message too large cannot fail the batch it would have joined.
		maxData: maxData - 512,
		// Batches outlive the calls that fill them; Close waits for them.
		base:    context.WithoutCancel(ctx),
		metrics: newBatchCollector(family, info.Config.Name),
		recent:  newRecent(),
		reqs:    make(chan *request),
		batches: make(chan []*request),
		quit:    make(chan struct{}),
	}
	p.batching.Store(info.Config.AllowAtomicPublish)
	p.wg.Add(1 + cfg.MaxInflight)
	go p.gather()
	for range cfg.MaxInflight {
		go p.send()
	}
	return p, nil
}

// Batching reports whether Publish publishes in atomic batches: false when
// the stream did not allow them when NewPublisher read it, or the server
// has since refused one (atomic publish disabled).
func (p *Publisher) Batching() bool { return p.batching.Load() }

// Collector returns the Publisher's metrics, to register once.
func (p *Publisher) Collector() *BatchCollector { return p.metrics }

// Close stops gathering, waits for the batches in flight to be answered
// (each within Timeout), and returns; Publish then returns ErrClosed.
func (p *Publisher) Close() {
	p.closing.Do(func() { close(p.quit) })
	p.wg.Wait()
}

// request is one Publish call waiting for its batch.
type request struct {
	ctx  context.Context
	msg  *nats.Msg
	done chan result // buffered: the answer never waits for the caller
	// copies are later calls in the same batch with the same message id:
	// the server refuses a batch holding an id twice, and they are
	// duplicates of whatever this one turns out to be.
	copies []*request
}

type result struct {
	ack *jetstream.PubAck
	err error
}

func (r *request) answer(ack *jetstream.PubAck, err error) {
	r.done <- result{ack, err}
	if err == nil {
		dup := *ack
		dup.Duplicate = true
		ack = &dup
	}
	for _, c := range r.copies {
		c.done <- result{ack, err}
	}
}

// Publish stores m in the stream and returns its PubAck (Duplicate set
// when the stream held its message id already), or the server's refusal
// (a *jetstream.APIError: a guard failed), or an error after which the
// outcome is unknown: ctx's error when ctx ends first, ErrClosed after
// Close. It waits at most Window for other messages to share its batch.
func (p *Publisher) Publish(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	select {
	case <-p.quit:
		return nil, ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if !p.batching.Load() || len(m.Data) > p.maxData { // too large: the server's own error, for it alone
		p.metrics.unbatched.Inc()
		return p.js.PublishMsg(ctx, m)
	}
	r := &request{ctx: ctx, msg: m, done: make(chan result, 1)}
	select {
	case p.reqs <- r:
	case <-p.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("publish: %w", ctx.Err())
	}
	select {
	case o := <-r.done:
		return o.ack, o.err
	case <-ctx.Done():
		// The batch may still store it: the outcome is unknown.
		return nil, fmt.Errorf("publish: %w", ctx.Err())
	}
}

// gather collects calls into batches and hands each to an idle sender once
// it is full or its window has passed. While every sender is busy the batch
// keeps growing, so batches grow with the load.
func (p *Publisher) gather() {
	defer p.wg.Done()
	defer close(p.batches)
	window := time.NewTimer(p.cfg.Window)
	window.Stop()
	var batch []*request
	due := false
	for {
		in := p.reqs
		if len(batch) >= p.cfg.MaxMessages {
			in = nil
		}
		var out chan []*request
		if due || len(batch) >= p.cfg.MaxMessages {
			out = p.batches
		}
		select {
		case r := <-in:
			batch = append(batch, r)
			if len(batch) == 1 {
				window.Reset(p.cfg.Window)
			}
		case <-window.C:
			due = true
		case out <- batch:
			batch, due = nil, false
			window.Stop()
		case <-p.quit:
			window.Stop()
			if len(batch) > 0 {
				p.batches <- batch
			}
			return
		}
	}
}

// send publishes the batches gather hands it, one at a time.
func (p *Publisher) send() {
	defer p.wg.Done()
	for batch := range p.batches {
		p.publishBatch(batch)
	}
}

// publishBatch publishes one gathered batch and answers every call in it.
func (p *Publisher) publishBatch(batch []*request) {
	ctx, cancel := context.WithTimeout(p.base, p.cfg.Timeout)
	defer cancel()
	var msgs []*request
	first := make(map[string]*request, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil { // gave up before its batch left: not published
			r.done <- result{err: fmt.Errorf("publish: %w", err)}
			continue
		}
		if id := r.msg.Header.Get(jetstream.MsgIDHeader); id != "" {
			if f, ok := first[id]; ok {
				f.copies = append(f.copies, r)
				continue
			}
			first[id] = r
		}
		msgs = append(msgs, r)
	}
	// A message whose id this Publisher sent lately is most likely a
	// re-send of one the stream holds: in the batch it would get the
	// whole batch refused, and each message sifted and sent again. Alone
	// it gets the server's own answer (a duplicate), at the cost of one
	// publish.
	msgs, alone := p.recent.split(msgs)
	if len(alone) > 0 {
		p.metrics.alone.Add(float64(len(alone)))
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { p.publishEach(ctx, alone) })
	}
	for resends := 0; len(msgs) > 0; resends++ {
		if len(msgs) < p.cfg.MinMessages || resends > maxResends {
			p.publishEach(ctx, msgs)
			return
		}
		p.metrics.sizes.Observe(float64(len(msgs)))
		last, err := p.commit(ctx, msgs)
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			// The batch's messages have consecutive sequences, in batch
			// order, ending at the one the PubAck carries.
			seq := last - uint64(len(msgs))
			for _, r := range msgs {
				seq++
				r.answer(&jetstream.PubAck{Stream: p.name, Sequence: seq}, nil)
			}
			return
		case !errors.As(err, &apiErr):
			for _, r := range msgs {
				r.answer(nil, err)
			}
			return
		case apiErr.ErrorCode == errCodeAtomicDisabled:
			// Refused before anything was staged: publish them singly,
			// and the calls after them too.
			if p.batching.Swap(false) {
				p.cfg.Logger.Warn("eventlog: the stream refuses atomic batches, publishing one message at a time", "stream", p.name)
			}
			p.publishEach(ctx, msgs)
			return
		case apiErr.ErrorCode == errCodeAtomicTooLarge:
			// Refused whole, before anything was stored: an operator lowered
			// the server's limit below MaxMessages.
			if !p.tooLarge.Swap(true) {
				p.cfg.Logger.Warn("eventlog: the server refuses batches this large, lower the batch's MaxMessages",
					"stream", p.name, "batch_size", len(msgs), "err", err)
			}
			p.publishEach(ctx, msgs)
			return
		case isGuardRefusal(apiErr) && p.sift == nil:
			// Refused whole, naming no message: each alone gets its own answer.
			p.publishEach(ctx, msgs)
			return
		case isGuardRefusal(apiErr):
			rest := p.answerSifted(ctx, msgs)
			if len(rest) == len(msgs) { // none settled: each on its own
				p.publishEach(ctx, rest)
				return
			}
			if len(rest) > 0 {
				p.metrics.resends.Inc()
			}
			msgs = rest
		default:
			// Refused for what no message alone decides (the stream is
			// full, say): every call gets the refusal, and none is stored.
			for _, r := range msgs {
				r.answer(nil, err)
			}
			return
		}
	}
}

// isGuardRefusal reports whether a batch was refused because one of its
// messages failed its guard: a message id the stream holds (inside the
// duplicate window), an expected last sequence that differs (the
// per-subject guard, a compare-and-set), or one being stored (clustered
// streams).
func isGuardRefusal(e *jetstream.APIError) bool {
	switch e.ErrorCode {
	case errCodeAtomicDuplicateMsgID, errCodeDuplicateInProcess,
		jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return true
	}
	return false
}

// answerSifted answers the calls of msgs that the family's Sift settles,
// and returns the others.
func (p *Publisher) answerSifted(ctx context.Context, msgs []*request) []*request {
	refused := make([]*nats.Msg, len(msgs))
	for i, r := range msgs {
		refused[i] = r.msg
	}
	settled := p.sift(ctx, refused)
	var rest []*request
	for i, r := range msgs {
		if i >= len(settled) || settled[i] == nil {
			rest = append(rest, r)
			continue
		}
		r.answer(settled[i].Ack, settled[i].Err)
	}
	return rest
}

// batchAck is the server's answer to the commit of an atomic batch.
type batchAck struct {
	Seq   uint64              `json:"seq"`
	Batch string              `json:"batch"`
	Count int                 `json:"count"`
	Error *jetstream.APIError `json:"error"`
}

// commit publishes msgs as one atomic batch and returns the sequence of its
// last message. A refusal is a *jetstream.APIError, after which the stream
// holds none of msgs.
func (p *Publisher) commit(ctx context.Context, msgs []*request) (uint64, error) {
	id := uuid.NewString()
	for i, r := range msgs {
		h := make(nats.Header, len(r.msg.Header)+3)
		for k, v := range r.msg.Header {
			h[k] = v
		}
		h[batchIDHeader] = []string{id}
		h[batchSeqHeader] = []string{strconv.Itoa(i + 1)}
		m := &nats.Msg{Subject: r.msg.Subject, Data: r.msg.Data, Header: h}
		if i < len(msgs)-1 {
			// No reply: the commit's answer covers the whole batch.
			if err := p.nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("publish batch: %w", err)
			}
			continue
		}
		h[batchCommitHeader] = []string{"1"}
		resp, err := p.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return 0, fmt.Errorf("commit batch: %w", err)
		}
		var ack batchAck
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return 0, fmt.Errorf("commit batch: %w", err)
		}
		if ack.Error != nil {
			return 0, fmt.Errorf("commit batch: %w", ack.Error)
		}
		if ack.Batch != id || ack.Count != len(msgs) || ack.Seq < uint64(len(msgs)) {
			return 0, fmt.Errorf("commit batch %s of %d: unexpected PubAck %s", id, len(msgs), resp.Data)
		}
		return ack.Seq, nil
	}
	return 0, errors.New("commit batch: no messages")
}

// publishEach publishes msgs one at a time, concurrently, each answered
// with the server's own answer.
func (p *Publisher) publishEach(ctx context.Context, msgs []*request) {
	p.metrics.unbatched.Add(float64(len(msgs)))
	var g errgroup.Group
	g.SetLimit(32)
	for _, r := range msgs {
		g.Go(func() error {
			r.answer(p.js.PublishMsg(ctx, r.msg))
			return nil
		})
	}
	_ = g.Wait()
}
