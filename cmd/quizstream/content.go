package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/content"
	"github.com/quizstream/quizstream/store"
)

const contentUsage = `usage: quizstream content <import FILE | export [-o FILE]> [flags]

  import FILE  validate a content file (docs/content.md) as a whole, then write
               it in one transaction: objects are inserted or updated by their
               ids, so importing a file twice changes nothing; with NATS_URL,
               saves the content copy and tells API instances to reload (as
               seed does). FILE - reads stdin. --dry-run only validates.
  export       write the database's content as a content file, to stdout or -o
               FILE; importing it into an empty database and exporting again
               gives the same bytes
`

// runContent imports and exports content files.
func runContent(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := stdout
		if len(args) == 0 {
			w = stderr
		}
		fmt.Fprint(w, contentUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	verb, args := args[0], args[1:]
	if verb != "import" && verb != "export" {
		fmt.Fprint(stderr, contentUsage)
		return errUsage
	}
	var c config
	f := newFlags("content "+verb, getenv, stderr)
	f.fs.Usage = func() {
		fmt.Fprint(f.fs.Output(), contentUsage+"\nflags:\n")
		f.fs.PrintDefaults()
	}
	f.common(&c)
	f.database(&c)
	var dryRun, asJSON bool
	var out string
	if verb == "import" {
		f.secretURL(&c.NATSURL, "NATS_URL", "", "NATS server URL(s); when set, the content copy is saved and running API instances are told to reload")
		f.natsAuth(&c)
		f.fs.BoolVar(&dryRun, "dry-run", false, "only validate the file; connects to nothing")
		f.fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	} else {
		f.fs.StringVar(&out, "o", "", "write the file here instead of stdout")
	}
	positional, err := parseWithPositional(f, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if verb == "export" {
		if len(positional) > 0 {
			return fmt.Errorf("content export: unexpected arguments %q (the file goes after -o)", positional)
		}
		return contentExport(ctx, &c, out, stdout, stderr)
	}
	if len(positional) != 1 {
		return errors.New("content import: give one FILE (- for stdin)")
	}
	data, err := readContentFile(positional[0])
	if err != nil {
		return err
	}
	// With --json, a refused file's problems are printed as JSON too, for
	// the tools that build content files.
	invalid := func(err error) error {
		var inv *content.InvalidError
		if asJSON && errors.As(err, &inv) {
			if jerr := json.NewEncoder(stdout).Encode(inv); jerr != nil {
				return jerr
			}
		}
		return err
	}
	if dryRun {
		file, err := content.Parse(data)
		if err != nil {
			return invalid(err)
		}
		n := file.Count()
		if asJSON {
			return json.NewEncoder(stdout).Encode(content.Result{Counts: n})
		}
		fmt.Fprintf(stdout, "valid: %d courses, %d quizzes, %d questions, %d choices; nothing written (--dry-run)\n",
			n.Courses, n.Quizzes, n.Questions, n.Choices)
		return nil
	}
	log, err := newLogger(&c, stderr)
	if err != nil {
		return err
	}
	f.logConfig(log, "content import")
	st, err := store.Open(ctx, store.Config{URL: c.DatabaseURL})
	if err != nil {
		return err
	}
	defer st.Close()
	ci := app.ContentImport{Store: st, Logger: log}
	if c.NATSURL != "" {
		nc, js, err := connectJetStream(c.NATSURL, c.NATSAuth, log)
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
	if asJSON {
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

// parseWithPositional parses args whose flags may come before and after
// the positional arguments, which it returns; flag.ErrHelp after -h.
func parseWithPositional(f *flags, args []string) ([]string, error) {
	var positional []string
	for {
		if err := f.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = f.fs.Args()
		if len(args) == 0 {
			break
		}
		positional, args = append(positional, args[0]), args[1:]
	}
	if len(f.errs) > 0 {
		return nil, fmt.Errorf("bad environment: %v", f.errs)
	}
	return positional, nil
}

func readContentFile(name string) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read content file: %w", err)
	}
	return data, nil
}

// contentExport writes the database's content to out, or to stdout when
// out is empty; a file is written whole or not at all.
func contentExport(ctx context.Context, c *config, out string, stdout, stderr io.Writer) error {
	log, err := newLogger(c, stderr)
	if err != nil {
		return err
	}
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
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("content export: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("content export: %w", err)
	}
	log.Info("content: exported", "file", out, "bytes", len(data))
	return nil
}
