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
	"github.com/quizstream/quizstream/events"
	"golang.org/x/sync/errgroup"
)

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

// maxResends bounds how often one batch is sent again without the attempts
// found stored; past it the rest are published one at a time.
const maxResends = 3

// Defaults of BatchConfig, named once: the binary's settings use them too.
const (
	DefaultBatchWindow      = time.Millisecond
	DefaultBatchMaxMessages = 500
)

// BatchConfig configures a Batcher.
type BatchConfig struct {
	// Window is the longest an attempt waits for others to join its batch.
	// A batch leaves as soon as it holds MaxMessages; while MaxInflight
	// batches await their PubAck it keeps gathering. Defaults to 1ms.
	Window time.Duration
	// MaxMessages bounds the attempts in one batch, at most 1000 (the
	// server's default max_batch_size; a server limited below it gets
	// each attempt alone). A batch costs the server a fixed few
	// milliseconds (it stages the batch in a store of its own) plus a
	// little per attempt, so large batches pay. Defaults to 500.
	MaxMessages int
	// MinMessages is the smallest batch sent as one: fewer attempts are
	// published one at a time (concurrently), which costs the server less
	// than the fixed cost of a batch. Defaults to 8, or MaxMessages when
	// that is smaller.
	MinMessages int
	// MaxInflight bounds the batches awaiting their PubAck at once. The
	// server commits a stream's batches one after the other, so a second
	// one only hides the round trip, and more split the waiting attempts
	// into smaller batches. The server accepts at most 50 batches in
	// flight per stream from all publishers together: keep MaxInflight x
	// API instances below 50. Defaults to 2.
	MaxInflight int
	// Timeout bounds the publishing of one batch: its PubAck, and the
	// lookups and re-sends a duplicate in it costs. Defaults to 5s.
	Timeout time.Duration
	// Index, when set, is asked before publishing: an attempt it holds is
	// answered from it as a duplicate, without a publish; and when a batch
	// is refused for holding a duplicate, it names the attempts the stream
	// holds without a lookup each. The API's Tail is one.
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
		c.MinMessages = min(8, c.MaxMessages)
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 2
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxMessages > serverMaxBatchMessages:
		return fmt.Errorf("events: BatchConfig.MaxMessages must be at most %d, not %d", serverMaxBatchMessages, c.MaxMessages)
	case c.MinMessages > c.MaxMessages:
		return fmt.Errorf("events: BatchConfig.MinMessages (%d) must not exceed MaxMessages (%d)", c.MinMessages, c.MaxMessages)
	case c.MaxInflight >= serverMaxBatchInflight:
		return fmt.Errorf("events: BatchConfig.MaxInflight must be below %d, not %d", serverMaxBatchInflight, c.MaxInflight)
	}
	return nil
}

// Index is what a Batcher knows of the stream without asking it: the
// unsettled attempts an API instance follows (a Tail).
type Index interface {
	// Held returns the stream's event of a student's attempt when the
	// index holds it, at once.
	Held(student, attempt uuid.UUID) (Published, bool)
	// CaughtUp waits until the index holds every event the stream held
	// when it was called; false if it did not in time.
	CaughtUp(ctx context.Context) bool
	// Stored tells the index of an event the Batcher has just published
	// (Duplicate set when the stream held it already), so that it need not
	// decode it again when the stream delivers it.
	Stored(Published)
}

// ErrClosed is what PublishAttempt returns once its Batcher is closed.
var ErrClosed = errors.New("events: batcher closed")

// Batcher is a Log whose PublishAttempt gathers concurrent attempts into
// atomic batch publishes: a server syncing every write syncs a few times
// per batch rather than once per attempt. Each attempt is answered as
// (*Log).PublishAttempt answers it. On a stream that does not allow atomic
// publishes it publishes one attempt at a time. It is safe for concurrent
// use; Close stops it.
type Batcher struct {
	*Log
	cfg     BatchConfig
	nc      *nats.Conn
	name    string
	maxData int
	base    context.Context
	metrics *BatchCollector

	batching atomic.Bool
	tooLarge atomic.Bool // warned that the server refuses batches this large
	reqs     chan *pending
	batches  chan []*pending
	quit     chan struct{}
	closing  sync.Once
	wg       sync.WaitGroup
}

// NewBatcher reads the stream's configuration and returns a Batcher
// publishing into l's stream, or the error of the lookup or of cfg. ctx
// bounds the lookup; the Batcher runs until Close.
func NewBatcher(ctx context.Context, l *Log, cfg BatchConfig) (*Batcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	info, err := l.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream info: %w", err)
	}
	nc := l.js.Conn()
	maxData := int(nc.MaxPayload())
	if m := int(info.Config.MaxMsgSize); m > 0 {
		maxData = min(maxData, m)
	}
	b := &Batcher{
		Log:  l,
		cfg:  cfg,
		nc:   nc,
		name: info.Config.Name,
		// Headers count toward both limits: leave them room, so that one
		// attempt too large cannot fail the batch it would have joined.
		maxData: maxData - 512,
		// Batches outlive the calls that fill them; Close waits for them.
		base:    context.WithoutCancel(ctx),
		metrics: newBatchCollector(),
		reqs:    make(chan *pending),
		batches: make(chan []*pending),
		quit:    make(chan struct{}),
	}
	b.batching.Store(info.Config.AllowAtomicPublish)
	b.wg.Add(1 + cfg.MaxInflight)
	go b.gather()
	for range cfg.MaxInflight {
		go b.send()
	}
	return b, nil
}

// Batching reports whether PublishAttempt publishes in atomic batches:
// false when the stream did not allow them when NewBatcher read it, or the
// server has since refused one (atomic publish disabled).
func (b *Batcher) Batching() bool { return b.batching.Load() }

// Close stops gathering, waits for the batches in flight to be answered
// (each within Timeout), and returns; PublishAttempt then returns ErrClosed.
func (b *Batcher) Close() {
	b.closing.Do(func() { close(b.quit) })
	b.wg.Wait()
}

// pending is one PublishAttempt call waiting for its batch.
type pending struct {
	ctx  context.Context
	e    events.AttemptSubmitted
	data []byte
	done chan outcome // buffered: the answer never waits for the caller
	// copies are later calls in the same batch with the same attempt id:
	// the server refuses a batch holding an id twice, and they are
	// duplicates of whatever this one turns out to be.
	copies []*pending
}

type outcome struct {
	pub Published
	err error
}

func (p *pending) answer(pub Published, err error) {
	p.done <- outcome{pub, err}
	if err == nil {
		pub.Duplicate = true
	}
	for _, c := range p.copies {
		c.done <- outcome{pub, err}
	}
}

// PublishAttempt appends e to the stream and returns once the stream has
// acknowledged it, like (*Log).PublishAttempt: the stream keeps one event
// per attempt id, and when it already holds one, inside the duplicate
// window or long after, PublishAttempt returns that original with
// Duplicate set. It waits at most Window for other attempts to share its
// batch. Any error means the outcome is unknown; ctx's error when ctx ends
// first, ErrClosed after Close.
func (b *Batcher) PublishAttempt(ctx context.Context, e events.AttemptSubmitted) (Published, error) {
	select {
	case <-b.quit:
		return Published{}, ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return Published{}, fmt.Errorf("publish attempt: %w", err)
	}
	if pub, ok := b.held(e); ok {
		// A retry of an attempt the stream holds: publishing it would only
		// get the batch it joined refused.
		return pub, nil
	}
	if !b.batching.Load() {
		b.metrics.unbatched.Inc()
		return b.stored(b.Log.PublishAttempt(ctx, e))
	}
	data, err := events.Encode(e)
	if err != nil {
		return Published{}, err
	}
	if len(data) > b.maxData { // the server's own error, for this attempt alone
		b.metrics.unbatched.Inc()
		return b.stored(b.Log.PublishAttempt(ctx, e))
	}
	p := &pending{ctx: ctx, e: e, data: data, done: make(chan outcome, 1)}
	select {
	case b.reqs <- p:
	case <-b.quit:
		return Published{}, ErrClosed
	case <-ctx.Done():
		return Published{}, fmt.Errorf("publish attempt: %w", ctx.Err())
	}
	select {
	case o := <-p.done:
		return o.pub, o.err
	case <-ctx.Done():
		// The batch may still store it: the outcome is unknown.
		return Published{}, fmt.Errorf("publish attempt: %w", ctx.Err())
	}
}

// gather collects calls into batches and hands each to an idle sender once
// it is full or its window has passed. While every sender is busy the batch
// keeps growing, so batches grow with the load.
func (b *Batcher) gather() {
	defer b.wg.Done()
	defer close(b.batches)
	window := time.NewTimer(b.cfg.Window)
	window.Stop()
	var batch []*pending
	due := false
	for {
		in := b.reqs
		if len(batch) >= b.cfg.MaxMessages {
			in = nil
		}
		var out chan []*pending
		if due || len(batch) >= b.cfg.MaxMessages {
			out = b.batches
		}
		select {
		case p := <-in:
			batch = append(batch, p)
			if len(batch) == 1 {
				window.Reset(b.cfg.Window)
			}
		case <-window.C:
			due = true
		case out <- batch:
			batch, due = nil, false
			window.Stop()
		case <-b.quit:
			window.Stop()
			if len(batch) > 0 {
				b.batches <- batch
			}
			return
		}
	}
}

// send publishes the batches gather hands it, one at a time.
func (b *Batcher) send() {
	defer b.wg.Done()
	for batch := range b.batches {
		b.publishBatch(batch)
	}
}

// publishBatch publishes one gathered batch and answers every call in it.
func (b *Batcher) publishBatch(batch []*pending) {
	ctx, cancel := context.WithTimeout(b.base, b.cfg.Timeout)
	defer cancel()
	var msgs []*pending
	first := make(map[uuid.UUID]*pending, len(batch))
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil { // gave up before its batch left: not published
			p.done <- outcome{err: fmt.Errorf("publish attempt: %w", err)}
			continue
		}
		if f, ok := first[p.e.AttemptID]; ok {
			f.copies = append(f.copies, p)
			continue
		}
		first[p.e.AttemptID] = p
		msgs = append(msgs, p)
	}
	for resends := 0; len(msgs) > 0; resends++ {
		if len(msgs) < b.cfg.MinMessages || resends > maxResends {
			b.publishEach(ctx, msgs)
			return
		}
		b.metrics.sizes.Observe(float64(len(msgs)))
		last, err := b.commit(ctx, msgs)
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			// The batch's messages have consecutive sequences, in batch
			// order, ending at the one the PubAck carries.
			seq := last - uint64(len(msgs))
			for _, p := range msgs {
				seq++
				p.answer(b.stored(Published{Event: p.e, Seq: seq}, nil))
			}
			return
		case !errors.As(err, &apiErr):
			answerAll(msgs, err)
			return
		case apiErr.ErrorCode == errCodeAtomicDisabled:
			// Refused before anything was staged: publish them singly,
			// and the calls after them too.
			if b.batching.Swap(false) {
				b.cfg.Logger.Warn("events: the stream refuses atomic batches, publishing attempts one at a time",
					"stream", b.name)
			}
			b.publishEach(ctx, msgs)
			return
		case apiErr.ErrorCode == errCodeAtomicTooLarge:
			// Refused whole, before anything was stored: an operator lowered
			// the server's limit below MaxMessages.
			if !b.tooLarge.Swap(true) {
				b.cfg.Logger.Warn("events: the server refuses batches this large, lower BatchConfig.MaxMessages",
					"stream", b.name, "batch_size", len(msgs), "err", err)
			}
			b.publishEach(ctx, msgs)
			return
		case isDuplicateRefusal(apiErr):
			// The whole batch was refused, naming no message: those whose
			// subject the stream holds are duplicates, answered with the
			// original; the rest go again. The index names those it holds
			// once it has caught up; without it (or when it holds none of
			// them: settled long ago) each is looked up.
			rest := b.answerHeld(ctx, msgs)
			if len(rest) == len(msgs) {
				rest = b.answerStored(ctx, msgs)
			}
			if len(rest) == len(msgs) { // none found: settle each on its own
				b.publishEach(ctx, rest)
				return
			}
			if len(rest) > 0 {
				b.metrics.resends.Inc()
			}
			msgs = rest
		default:
			answerAll(msgs, err)
			return
		}
	}
}

func answerAll(msgs []*pending, err error) {
	for _, p := range msgs {
		p.answer(Published{}, err)
	}
}

// isDuplicateRefusal reports whether a batch was refused because one of
// its messages repeats an attempt the stream holds (by Nats-Msg-Id inside
// the duplicate window, by the per-attempt subject guard after it), or one
// being stored (clustered streams).
func isDuplicateRefusal(e *jetstream.APIError) bool {
	switch e.ErrorCode {
	case errCodeAtomicDuplicateMsgID, errCodeDuplicateInProcess,
		jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return true
	}
	return false
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
func (b *Batcher) commit(ctx context.Context, msgs []*pending) (uint64, error) {
	id := uuid.NewString()
	for i, p := range msgs {
		m := &nats.Msg{Subject: p.e.Subject(), Data: p.data, Header: nats.Header{
			jetstream.MsgIDHeader:          {p.e.AttemptID.String()},
			jetstream.ExpectedStreamHeader: {b.name},
			// Refuse a second event on this attempt's subject forever, not
			// only within the duplicate window.
			jetstream.ExpectedLastSubjSeqHeader: {"0"},
			batchIDHeader:                       {id},
			batchSeqHeader:                      {strconv.Itoa(i + 1)},
		}}
		if i < len(msgs)-1 {
			// No reply: the commit's answer covers the whole batch.
			if err := b.nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("publish batch: %w", err)
			}
			continue
		}
		m.Header[batchCommitHeader] = []string{"1"}
		resp, err := b.nc.RequestMsgWithContext(ctx, m)
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

// stored tells the index of a published event and returns it as it is.
func (b *Batcher) stored(pub Published, err error) (Published, error) {
	if err == nil && b.cfg.Index != nil {
		b.cfg.Index.Stored(pub)
	}
	return pub, err
}

// held returns e's original as a duplicate when the index holds it.
func (b *Batcher) held(e events.AttemptSubmitted) (Published, bool) {
	if b.cfg.Index == nil {
		return Published{}, false
	}
	pub, ok := b.cfg.Index.Held(e.StudentID, e.AttemptID)
	if !ok {
		return Published{}, false
	}
	b.metrics.held.Inc()
	pub.Duplicate = true
	return pub, true
}

// answerHeld answers the calls of msgs whose attempt the index holds, once
// it has caught up with the stream, and returns the others.
func (b *Batcher) answerHeld(ctx context.Context, msgs []*pending) []*pending {
	if b.cfg.Index == nil || !b.cfg.Index.CaughtUp(ctx) {
		return msgs
	}
	var rest []*pending
	for _, p := range msgs {
		if pub, ok := b.held(p.e); ok {
			p.answer(pub, nil)
			continue
		}
		rest = append(rest, p)
	}
	return rest
}

// answerStored answers the calls of msgs whose attempt the stream holds
// (with the original, as a duplicate) or whose lookup failed, and returns
// the others.
func (b *Batcher) answerStored(ctx context.Context, msgs []*pending) []*pending {
	type found struct {
		pub Published
		err error
	}
	res := make([]found, len(msgs))
	var g errgroup.Group
	g.SetLimit(16)
	for i, p := range msgs {
		g.Go(func() error {
			res[i].pub, res[i].err = b.original(ctx, p.e.Subject())
			return nil
		})
	}
	_ = g.Wait()
	var rest []*pending
	for i, p := range msgs {
		if errors.Is(res[i].err, jetstream.ErrMsgNotFound) {
			rest = append(rest, p)
			continue
		}
		p.answer(res[i].pub, res[i].err)
	}
	return rest
}

// original returns the stored event on subject as a duplicate, an error
// wrapping jetstream.ErrMsgNotFound when there is none, or the error of
// the lookup.
func (b *Batcher) original(ctx context.Context, subject string) (Published, error) {
	m, err := b.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Published{}, err
	}
	if err != nil {
		return Published{}, fmt.Errorf("read original attempt: %w", err)
	}
	stored, err := events.Decode(m.Data)
	if err != nil {
		return Published{}, fmt.Errorf("read original attempt at seq %d: %w", m.Sequence, err)
	}
	return Published{Event: stored, Seq: m.Sequence, Duplicate: true}, nil
}

// publishEach publishes msgs one at a time, concurrently, as the Log does.
func (b *Batcher) publishEach(ctx context.Context, msgs []*pending) {
	b.metrics.unbatched.Add(float64(len(msgs)))
	var g errgroup.Group
	g.SetLimit(32)
	for _, p := range msgs {
		g.Go(func() error {
			p.answer(b.stored(b.Log.PublishAttempt(ctx, p.e)))
			return nil
		})
	}
	_ = g.Wait()
}
