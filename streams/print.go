package streams

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteText prints what Apply did, as `quizstream stream apply` shows it.
func (res ApplyResult) WriteText(w io.Writer) {
	for _, o := range res.Created {
		fmt.Fprintf(w, "created %s\n", o)
	}
	for _, ch := range res.Changed {
		fmt.Fprintf(w, "changed %s %s: %s -> %s\n", ch.Object, ch.Field, ch.Was, ch.Now)
	}
	verb := "refused"
	if res.Forced {
		verb = "forced"
	}
	for _, ch := range res.Refused {
		fmt.Fprintf(w, "%s %s %s: %s -> %s: %s\n", verb, ch.Object, ch.Field, ch.Was, ch.Now, ch.Reason)
	}
	if len(res.Created)+len(res.Changed)+len(res.Refused) == 0 {
		fmt.Fprintln(w, "nothing to change")
	}
}

// WriteText prints the status as `quizstream stream status` shows it;
// it returns the error of writing its table.
func (st StatusResult) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	stream := func(s StreamStatus) {
		c := s.Capacity
		fmt.Fprintf(tw, "stream\t%s\n", s.Name)
		fmt.Fprintf(tw, "  replicas, storage\t%d, %s\n", s.Replicas, s.Storage)
		fmt.Fprintf(tw, "  retention, discard\t%s, %s\n", s.Retention, s.Discard)
		maxAge := s.MaxAge.String()
		if s.MaxAge <= 0 {
			maxAge = "unlimited"
		}
		fmt.Fprintf(tw, "  max_age, duplicates\t%s, %s\n", maxAge, s.Duplicates)
		fmt.Fprintf(tw, "  atomic batches\t%t\n", s.AllowAtomicPublish)
		fmt.Fprintf(tw, "  bytes\t%d of %s\n", c.Bytes, limit(c.MaxBytes))
		fmt.Fprintf(tw, "  messages\t%d of %s\n", c.Messages, limit(c.MaxMessages))
		fmt.Fprintf(tw, "  subjects\t%d\n", c.Subjects)
		full := ""
		if c.Full() {
			full = "  FULL: publishes are refused"
		}
		fmt.Fprintf(tw, "  fill\t%.1f%%%s\n", 100*c.Fill(), full)
		fmt.Fprintf(tw, "  sequences\t%d to %d\n", s.FirstSeq, s.LastSeq)
		if !s.FirstTime.IsZero() {
			fmt.Fprintf(tw, "  oldest event\t%s (%s ago)\n", s.FirstTime.UTC().Format(time.RFC3339), time.Since(s.FirstTime).Round(time.Second))
		}
		if s.Leader != "" && s.Replicas > 1 {
			fmt.Fprintf(tw, "  leader\t%s\n", s.Leader)
		}
	}
	for _, f := range st.Families {
		fmt.Fprintf(tw, "family\t%s\n", f.Name)
		for _, ss := range f.Streams {
			stream(ss)
		}
		for _, c := range f.Consumers {
			fmt.Fprintf(tw, "consumer\t%s (of %s)\n", c.Name, c.Stream)
			fmt.Fprintf(tw, "  ack_wait, max_ack_pending, max_deliver\t%s, %d, %d\n", c.AckWait, c.MaxAckPending, c.MaxDeliver)
			fmt.Fprintf(tw, "  ack floor\t%d\n", c.AckFloor)
			fmt.Fprintf(tw, "  lag\t%d events not settled (%d undelivered, %d in workers' hands, %d redelivered)\n",
				c.Lag, c.Pending, c.AckPending, c.Redelivered)
			fmt.Fprintf(tw, "  oldest unsettled\t%s (of max_age %s)\n", c.OldestUnacked.Round(time.Millisecond), c.MaxAge)
		}
		for _, m := range f.Missing {
			fmt.Fprintf(tw, "%s\tmissing: run quizstream stream apply\n", m)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Mismatches) == 0 {
		fmt.Fprintln(w, "settings: as configured")
		return nil
	}
	fmt.Fprintln(w, "settings that differ (found -> configured):")
	for _, m := range st.Mismatches {
		kind := "warn"
		if m.Fatal {
			kind = "FATAL: api and worker refuse to start"
		}
		fmt.Fprintf(w, "  %s %s: %s -> %s (%s)\n", m.Object, m.Field, m.Was, m.Now, kind)
	}
	return nil
}

// WriteDeadLetters prints dead letters as `quizstream dlq list` shows
// them: a table, then their count. It returns the first error of writing.
func WriteDeadLetters(w io.Writer, letters []DeadLetter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tORIGINAL_SEQ\tTIME\tSUBJECT\tREASON")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", l.Seq, l.OriginalSeq, l.Time.UTC().Format("2006-01-02T15:04:05Z"), l.OriginalSubject, l.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letter(s)\n", len(letters))
	return err
}

// WriteText prints one dead letter as `quizstream dlq show` shows it,
// its data as stored; it returns the error of writing.
func (l DeadLetter) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "seq: %d\noriginal_seq: %d\nsubject: %s\ntime: %s\nreason: %s\ndata: %s\n",
		l.Seq, l.OriginalSeq, l.OriginalSubject, l.Time.UTC().Format("2006-01-02T15:04:05.000Z"), l.Reason, l.Data)
	return err
}
