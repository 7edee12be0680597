package main

import (
	"context"
	"flag"

	"github.com/quizstream/quizstream/app"
	"github.com/quizstream/quizstream/streams"
)

func streamFlags(fs *flag.FlagSet, c *config) {
	fs.BoolVar(&c.Force, "force", false, "with apply: apply even what lowers replicas or MaxAge, or shrinks a limit below what the stream holds")
	fs.BoolVar(&c.JSON, "json", false, "with status: print the status as JSON")
}

// runStream is the one owner of the stream settings: api and worker
// processes only check what they find.
func runStream(ctx context.Context, c *config, in invocation) error {
	verb, stdout := in.verb, in.stdout
	if (verb == "status" && c.Force) || (verb == "apply" && c.JSON) {
		return usageErr("stream: --force goes with apply, --json with status")
	}
	nc, js, err := app.ConnectJetStream(c.NATSURL, c.NATSAuth, in.log)
	if err != nil {
		return err
	}
	defer nc.Close()
	families := streams.Declared(c.Stream, c.Exams, c.Checks)
	if verb == "apply" {
		res, err := streams.Apply(ctx, js, c.Force, families...)
		res.WriteText(stdout)
		return err
	}
	st, err := streams.Status(ctx, js, families...)
	if err != nil {
		return err
	}
	if c.JSON {
		err = printJSON(stdout, st)
	} else {
		err = st.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	return st.Err()
}
