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
	"path/filepath"

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
	if c.DryRun {
		file, err := content.Parse(data)
		if err != nil {
			return invalid(err)
		}
		n := file.Count()
		if c.JSON {
			return json.NewEncoder(stdout).Encode(content.Result{Counts: n})
		}
		fmt.Fprintf(stdout, "valid: %d courses, %d quizzes, %d questions, %d choices; nothing written (--dry-run)\n",
			n.Courses, n.Quizzes, n.Questions, n.Choices)
		return nil
	}
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer st.Close()
	ci := app.ContentImport{Store: st, Logger: in.log}
	if c.NATSURL != "" {
		nc, js, err := app.ConnectJetStream(c.NATSURL, c.NATSAuth, in.log)
		if err != nil {
			return err
		}
		defer nc.Close()
		ci.NATS, ci.JS = nc, js
	}
	res, err := app.ImportContent(ctx, ci, data)
	if err != nil {
		return invalid(err)
	}
	if c.JSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "imported %d courses, %d quizzes, %d questions, %d choices: %d rows changed\n",
		res.Courses, res.Quizzes, res.Questions, res.Choices, res.RowsChanged)
	if res.CopySaved {
		fmt.Fprintln(stdout, "content copy in NATS saved")
	}
	if res.Notified {
		fmt.Fprintln(stdout, "API instances told to reload content")
	}
	return nil
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
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("content export: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("content export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("content export: %w", err)
	}
	// The file holds the answer keys: readable by its owner alone.
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("content export: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("content export: %w", err)
	}
	log.Info("content: exported", "file", out, "bytes", len(data))
	return nil
}
