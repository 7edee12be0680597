package replay_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/quizstream/quizstream/events"
	"github.com/quizstream/quizstream/replay"
)

// A dry run decodes and validates every event (PostgreSQL's refusals
// included) and writes nothing; Since, Until and FromSeq select exactly
// their events.
func TestDryRunAndRanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	student := uuid.New()
	phase := func(n int) []events.AttemptSubmitted {
		var evs []events.AttemptSubmitted
		for i := range n {
			e := f.event(student, i, i%11)
			f.publish(t, e)
			evs = append(evs, e)
		}
		time.Sleep(5 * time.Millisecond) // phases apart in time, not only in sequence
		return evs
	}
	// seq 1-10, 11-19, then an undecodable message at 20
	a := phase(10)
	b := phase(9)
	f.publishRaw(t, events.AttemptSubject(student, uuid.New()), []byte("{garbage"))
	time.Sleep(5 * time.Millisecond)
	c := phase(9) // seq 21-29
	nul, data := f.poisonWithNUL(student)
	f.publishRaw(t, nul.Subject(), data) // seq 30

	stream, err := f.js.Stream(t.Context(), f.stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(seq uint64) time.Time {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		return m.Time
	}
	empty := func() {
		t.Helper()
		if n := f.int(t, `SELECT count(*) FROM attempts`); n != 0 {
			t.Fatalf("%d attempts stored", n)
		}
		if n := f.int(t, `SELECT count(*) FROM progress`); n != 0 {
			t.Fatalf("%d progress rows stored", n)
		}
	}
	seqs := func(what string, res replay.Result, first, last uint64) {
		t.Helper()
		if res.FirstSeq != first || res.LastSeq != last {
			t.Errorf("%s read seq %d to %d, want %d to %d", what, res.FirstSeq, res.LastSeq, first, last)
		}
	}

	// A dry run over the empty database, in batches of 7.
	cfg := f.config(t, replay.DryRun)
	cfg.BatchSize = 7
	res := f.run(t, cfg)
	wantCounts(t, "a dry run over the empty database", res, counts{Read: 30, Stored: 28, Poison: 2})
	seqs("a dry run", res, 1, 30)
	if res.Mode != replay.DryRun {
		t.Errorf("mode %q, want %q", res.Mode, replay.DryRun)
	}
	empty()

	// Until: phase a only.
	cfg = f.config(t, replay.Restore)
	cfg.Until = stamp(10)
	res = f.run(t, cfg)
	wantCounts(t, "Until", res, counts{Read: 10, Stored: 10})
	seqs("Until", res, 1, 10)
	if got, want := f.storedIDs(t, "recorded"), sortedIDs(a); !slices.Equal(got, want) {
		t.Fatalf("Until stored %d attempts, want phase a's %d", len(got), len(want))
	}

	// A dry run over a partly restored database writes nothing either.
	beforeAttempts, beforeProgress := f.checksums(t, true)
	res = f.run(t, f.config(t, replay.DryRun))
	wantCounts(t, "a dry run over a partly restored database", res, counts{Read: 30, Stored: 18, AlreadyPresent: 10, Poison: 2})
	if a, p := f.checksums(t, true); a != beforeAttempts || p != beforeProgress {
		t.Fatal("a dry run changed the database")
	}

	// Since and Until: phase b and the undecodable message after it.
	cfg = f.config(t, replay.Restore)
	cfg.Since, cfg.Until = stamp(11), stamp(20)
	res = f.run(t, cfg)
	wantCounts(t, "Since and Until", res, counts{Read: 10, Stored: 9, Poison: 1})
	seqs("Since and Until", res, 11, 20)
	if got, want := f.storedIDs(t, "recorded"), sortedIDs(a, b); !slices.Equal(got, want) {
		t.Fatalf("Since and Until: %d attempts stored, want phases a and b's %d", len(got), len(want))
	}

	// FromSeq: phase c and the poison after it, stored as a tombstone.
	cfg = f.config(t, replay.Restore)
	cfg.FromSeq = 21
	res = f.run(t, cfg)
	wantCounts(t, "FromSeq", res, counts{Read: 10, Stored: 9, Poison: 1})
	seqs("FromSeq", res, 21, 30)
	if got, want := f.storedIDs(t, "recorded"), sortedIDs(a, b, c); !slices.Equal(got, want) {
		t.Fatalf("FromSeq: %d attempts stored, want all %d", len(got), len(want))
	}
	if got := f.storedIDs(t, "failed"); !slices.Equal(got, []uuid.UUID{nul.AttemptID}) {
		t.Fatalf("tombstones %v, want the poison attempt's", got)
	}

	// Ranges holding nothing: a Result with nothing read, and no error.
	for name, set := range map[string]func(*replay.Config){
		"FromSeq past the end": func(c *replay.Config) { c.FromSeq = 31 },
		"Since in the future":  func(c *replay.Config) { c.Since = time.Now().Add(time.Hour) },
		"Until in the past":    func(c *replay.Config) { c.Until = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		cfg := f.config(t, replay.Restore)
		set(&cfg)
		res := f.run(t, cfg)
		if res.Mode != replay.Restore || countsOf(res) != (counts{}) || res.FirstSeq != 0 || res.LastSeq != 0 || res.EndSeq != 30 {
			t.Errorf("%s: %+v, want nothing read of a stream ending at 30", name, res)
		}
	}
}
