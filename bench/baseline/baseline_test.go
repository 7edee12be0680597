package baseline_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quizstream/quizstream/bench/baseline"
	"github.com/quizstream/quizstream/bench/load"
	"github.com/quizstream/quizstream/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The baseline keeps the API's contract: every 202 is stored once, with
// its score and submitted_at, a retry with the same key answers the
// original, and an attempt reads as recorded from its 202 on.
func TestBaselineStoresEachAttemptOnceBeforeThe202(t *testing.T) {
	dbURL := storetest.NewDatabase(t)
	srv, err := baseline.NewServer(t.Context(), baseline.Config{
		DatabaseURL: dbURL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	res, err := load.Run(t.Context(), load.Config{
		URL: "http://" + ln.Addr().String(), Users: 4, Duration: 1500 * time.Millisecond,
		ResendShare: 0.3, LagRate: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_ = res.WriteTable(&b)
	t.Log("\n" + b.String())
	if res.Total.Errors != 0 || res.Total.Unavailable != 0 || res.Resends == 0 {
		t.Errorf("%d errors, %d 503s, %d re-sent POSTs; want no failure and some re-sent", res.Total.Errors, res.Total.Unavailable, res.Resends)
	}
	v := res.Verify
	if v == nil || !v.OK || v.Keys == 0 {
		t.Fatalf("check: %+v", v)
	}
	if res.Lag.Count == 0 || res.LagPolls != res.Lag.Count {
		t.Errorf("lag %+v after %d polls; want every sampled 202 read as recorded at the first poll", res.Lag, res.LagPolls)
	}
	db := storetest.DB(t, dbURL)
	if n := storetest.Int(t, db, `SELECT count(*) FROM attempts`); n != v.Keys {
		t.Errorf("%d attempts stored for %d keys answered 202", n, v.Keys)
	}
}
