package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/store/storetest"
	"github.com/quizstream/quizstream/streams"
)

// dev's embedded NATS server listens on NATS_PORT, where the holder of the
// seed dev keeps reaches the streams, and dev prints that address and the
// nats CLI's flags with its ready line; cancelling dev (as SIGINT does)
// ends it without an error, so the process exits 0.
func TestDevNATSPort(t *testing.T) {
	t.Parallel()
	_, port, err := net.SplitHostPort(apptest.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	dir, addr := t.TempDir(), apptest.FreeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--database-url", storetest.NewDatabase(t), "--nats-port", port, "--data-dir", dir,
			"--listen-addr", addr, "--metrics-addr", "off", "--log-level", "error"}, &stdout, &stderr)
	}()
	auth := app.NATSAuth{NKeySeedFile: filepath.Join(dir, "nats-dev.nk")}
	apptest.WaitFor(t, 30*time.Second, "dev's NATS server on port "+port+" with its stream", func() bool {
		nc, err := app.Connect("nats://127.0.0.1:"+port, auth, apptest.Logger(t))
		if err != nil {
			return false
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return false
		}
		_, err = js.Stream(t.Context(), streams.DefaultStreamName)
		return err == nil
	})
	apptest.WaitFor(t, 30*time.Second, "dev's API", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	cancel()
	select {
	case err := <-done:
		if exitCode(err) != exitOK {
			t.Fatalf("dev after its context ended: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("dev did not stop within a minute of its context ending")
	}
	// The ready lines: the NATS server's address with the stock nats CLI's
	// way in (README), then the API's.
	url := "nats://127.0.0.1:" + port
	want := "quizstream NATS listening on " + url + " (nats CLI: nats --server " + url + " --nkey " + auth.NKeySeedFile + ")\n" +
		"quizstream API listening on http://" + addr + "/api/v1/courses\n"
	if stdout.String() != want {
		t.Errorf("dev printed\n%s\nwant\n%s", stdout.String(), want)
	}
}
