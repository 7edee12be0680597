package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/content"
	"github.com/quizstream/quizstream/store"
)

func contentFlags(fs *flag.FlagSet, c *config) {
	fs.BoolVar(&c.DryRun, "dry-run", false, "with import: only validate the file; connects to nothing")
	fs.BoolVar(&c.JSON, "json", false, "with import: print the result (or a refused file's problems) as JSON")
	fs.StringVar(&c.Out, "o", "", "with export: write the file here instead of stdout")
}

// runContent imports and exports content files (docs/content.md).
func runContent(ctx context.Context, c *config, in invocation) error {
	stdout := in.stdout
	if in.verb == "export" {
		if len(in.args) > 0 {
			return usageErr("content export: unexpected arguments %q (the file goes after -o)", in.args)
		}
		return contentExport(ctx, c, c.Out, stdout, in.log)
	}
	if len(in.args) != 1 {
		return usageErr("content import: give one FILE (- for stdin)")
	}
	data, err := readContentFile(in.args[0])
	if err != nil {
		return err
	}
	// With --json, a refused file's problems are printed as JSON too, for
	// the tools that build content files.
	invalid := func(err error) error {
		var inv *content.InvalidError
		if c.JSON && errors.As(err, &inv) {
			if jerr := json.NewEncoder(stdout).Encode(inv); jerr != nil {
				return jerr
			}
		}
		return err
	}
	res, err := importContent(ctx, c, in, data)
	if err != nil {
		return invalid(err)
	}
	if c.JSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	res.WriteText(stdout, c.DryRun)
	return nil
}

// importContent imports data, or with --dry-run only validates it.
func importContent(ctx context.Context, c *config, in invocation, data []byte) (content.Result, error) {
	if c.DryRun {
		file, err := content.Parse(data)
		if err != nil {
			return content.Result{}, err
		}
		return content.Result{Counts: file.Count()}, nil
	}
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return content.Result{}, err
	}
	defer st.Close()
	ci := app.ContentImport{Store: st, Logger: in.log}
	if c.NATSURL != "" {
		nc, js, err := app.ConnectJetStream(c.NATSURL, c.NATSAuth, in.log)
		if err != nil {
			return content.Result{}, err
		}
		defer nc.Close()
		ci.NATS, ci.JS = nc, js
	}
	return app.ImportContent(ctx, ci, data)
}

func readContentFile(name string) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name) //nolint:gosec // G304: the operator names the file to import
	if err != nil {
		return nil, fmt.Errorf("read content file: %w", err)
	}
	return data, nil
}

// contentExport writes the database's content to out, or to stdout when
// out is empty; a file is written whole or not at all.
func contentExport(ctx context.Context, c *config, out string, stdout io.Writer, log *slog.Logger) error {
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer st.Close()
	data, err := content.Export(ctx, st)
	if err != nil {
		return err
	}
	if out == "" {
		_, err := stdout.Write(data)
		return err
	}
	if err := content.WriteFile(out, data); err != nil {
		return err
	}
	log.Info("content: exported", "file", out, "bytes", len(data))
	return nil
}
