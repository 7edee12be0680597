package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/quizstream/quizstream/streams"
)

const dlqUsage = `usage: quizstream dlq <list | show SEQ | redrive SEQ... | redrive --all> [flags]

  list        the dead letters: sequence, original sequence, subject, reason
  show SEQ    one dead letter in full, its data included
  redrive     publish dead letters again on their original subjects (after the
              cause is fixed); workers store them, the primary key keeps it once
`

// runDLQ is the operator's view of the dead-letter stream.
func runDLQ(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return errUsage
	}
	verb, args := args[0], args[1:]
	var c config
	f := newFlags("dlq "+verb, getenv, stderr)
	f.common(&c)
	f.nats(&c, true)
	all := f.fs.Bool("all", false, "with redrive: every dead letter")
	limit := f.fs.Int("limit", 100, "with list: how many at most")
	// Positional arguments (sequences) come before or after the flags.
	var seqs []uint64
	for len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		n, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil {
			return fmt.Errorf("not a sequence number: %q", args[0])
		}
		seqs, args = append(seqs, n), args[1:]
	}
	if err := f.fs.Parse(args); err != nil {
		return errUsage
	}
	for _, a := range f.fs.Args() {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return fmt.Errorf("not a sequence number: %q", a)
		}
		seqs = append(seqs, n)
	}
	if len(f.errs) > 0 {
		return fmt.Errorf("bad environment: %v", f.errs)
	}
	if c.NATSURL == "" {
		return errors.New("NATS_URL is required")
	}
	log, err := newLogger(&c, stderr)
	if err != nil {
		return err
	}
	nc, js, err := connectJetStream(c.NATSURL, c.NATSAuth, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	dl, err := streams.LookupDeadLetters(ctx, js, c.Stream) // an operator's look changes no setting
	if err != nil {
		return err
	}

	switch verb {
	case "list":
		letters, err := dl.List(ctx, 0, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tORIGINAL_SEQ\tTIME\tSUBJECT\tREASON")
		for _, l := range letters {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", l.Seq, l.OriginalSeq, l.Time.UTC().Format("2006-01-02T15:04:05Z"), l.OriginalSubject, l.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead letter(s)\n", len(letters))
		return nil
	case "show":
		if len(seqs) != 1 {
			return errors.New("show takes one sequence number")
		}
		l, err := dl.Get(ctx, seqs[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "seq: %d\noriginal_seq: %d\nsubject: %s\ntime: %s\nreason: %s\ndata: %s\n",
			l.Seq, l.OriginalSeq, l.OriginalSubject, l.Time.UTC().Format("2006-01-02T15:04:05.000Z"), l.Reason, l.Data)
		return nil
	case "redrive":
		if *all {
			letters, err := dl.List(ctx, 0, 1<<30)
			if err != nil {
				return err
			}
			for _, l := range letters {
				seqs = append(seqs, l.Seq)
			}
		}
		if len(seqs) == 0 {
			return errors.New("redrive takes sequence numbers or --all")
		}
		for _, seq := range seqs {
			newSeq, err := dl.Redrive(ctx, seq)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "dead letter %d republished as attempts stream seq %d\n", seq, newSeq)
		}
		return nil
	}
	fmt.Fprint(stderr, dlqUsage)
	return errUsage
}
