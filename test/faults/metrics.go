package faults

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BatchSeconds scrapes the /metrics of a worker process's operations
// listener at ops (host:port) and returns the sum and count of its batch
// durations; it fails t when it cannot, or when no batch was timed.
func BatchSeconds(t testing.TB, ops string) (sum, count float64) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatalf("scrape worker metrics: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape worker metrics: %v", err)
	}
	// The histogram is labelled by event family: every family's series
	// counts.
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		j := strings.LastIndexByte(line, ' ')
		if i <= 0 || j < i {
			continue
		}
		v, _ := strconv.ParseFloat(line[j+1:], 64)
		switch line[:i] {
		case "quizstream_worker_batch_duration_seconds_sum":
			sum += v
		case "quizstream_worker_batch_duration_seconds_count":
			count += v
		}
	}
	if count == 0 {
		t.Fatalf("worker metrics have no quizstream_worker_batch_duration_seconds")
	}
	return sum, count
}

// DatabaseRTT returns how long a query takes through dbURL, or fails t.
func DatabaseRTT(t testing.TB, dbURL string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	start := time.Now()
	if _, err := conn.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}
