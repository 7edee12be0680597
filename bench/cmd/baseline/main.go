// Command baseline serves the benchmark's yardstick (package
// bench/baseline): quizstream's API writing each attempt with a synchronous
// single-row insert on the request path. It is for `make bench` only.
//
//	DATABASE_URL=postgres://... baseline -listen-addr 127.0.0.1:8081
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/quizstream/quizstream/bench/baseline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", getenv("DATABASE_URL"), "PostgreSQL, migrated and seeded (default $DATABASE_URL)")
	addr := fs.String("listen-addr", "127.0.0.1:8081", "public HTTP listener")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := baseline.NewServer(ctx, baseline.Config{DatabaseURL: *dbURL, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		srv.Store.Close()
		return err
	}
	return srv.Serve(ctx, ln)
}
