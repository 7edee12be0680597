// Command floor is `make bench`'s floor: a trivial Echo server answering
// every GET with one precomputed JSON body, through the same framework,
// HTTP server and load tool as the API, so that a stack's CPU per request
// can be stated as a multiple of what serving a request at all costs on
// this machine. It is for `make bench` only.
//
//	floor -listen-addr 127.0.0.1:8082
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// Body is what every GET answers: a JSON object of about the size of a
// course in the demo content's list (about 600 bytes).
var Body = []byte(`{"id":"00000000-0000-0000-0000-000000000000","title":"Floor","quizzes":[` +
	strings.TrimSuffix(strings.Repeat(`{"id":"00000000-0000-0000-0000-000000000000","title":"quiz"},`, 9), ",") + `]}`)

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen-addr", "127.0.0.1:8082", "HTTP listener")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/*", func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, Body) })
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
