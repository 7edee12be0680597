package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/streams"
)

func dlqFlags(fs *flag.FlagSet, c *config) {
	fs.BoolVar(&c.All, "all", false, "with redrive: every dead letter")
	fs.IntVar(&c.Limit, "limit", 100, "with list: how many at most")
	fs.BoolVar(&c.JSON, "json", false, "with list and show: print the dead letters as JSON (their data base64)")
}

// runDLQ is the operator's view of the dead-letter stream.
func runDLQ(ctx context.Context, c *config, in invocation) error {
	verb, stdout := in.verb, in.stdout
	var seqs []uint64
	for _, a := range in.args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return usageErr("not a sequence number: %q", a)
		}
		seqs = append(seqs, n)
	}
	nc, js, err := app.ConnectJetStream(c.NATSURL, c.NATSAuth, in.log)
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
		letters, err := dl.List(ctx, 0, c.Limit)
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(stdout, letters)
		}
		return streams.WriteDeadLetters(stdout, letters)
	case "show":
		if len(seqs) != 1 {
			return usageErr("show takes one sequence number")
		}
		l, err := dl.Get(ctx, seqs[0])
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(stdout, l)
		}
		return l.WriteText(stdout)
	case "redrive":
		if c.All {
			letters, err := dl.List(ctx, 0, 1<<30)
			if err != nil {
				return err
			}
			for _, l := range letters {
				seqs = append(seqs, l.Seq)
			}
		}
		if len(seqs) == 0 {
			return usageErr("redrive takes sequence numbers or --all")
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
	return nil // run accepts only the verbs above
}
