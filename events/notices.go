package events

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Notices are core NATS messages (not stream events) that tell every API
// instance to drop something it caches. They are hints: an instance that
// misses one catches up by its periodic safety net.
const (
	// SubjectContentChanged carries no payload: content was written.
	SubjectContentChanged = "quizstream.notice.content_changed"
	// SubjectTokenRevoked carries the SHA-256 of a revoked bearer token.
	SubjectTokenRevoked = "quizstream.notice.token_revoked"
)

// Notify publishes a notice and flushes it to the server; it returns the
// error of either.
func Notify(nc *nats.Conn, subject string, payload []byte) error {
	if err := nc.Publish(subject, payload); err != nil {
		return fmt.Errorf("notify %s: %w", subject, err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("notify %s: %w", subject, err)
	}
	return nil
}

// Notices sends and receives notices on a NATS connection.
type Notices struct {
	nc *nats.Conn
}

// NewNotices returns Notices on nc.
func NewNotices(nc *nats.Conn) *Notices { return &Notices{nc: nc} }

// Notify publishes a notice and flushes it; it returns the error of either.
func (n *Notices) Notify(subject string, payload []byte) error {
	return Notify(n.nc, subject, payload)
}

// Subscribe calls handle with the payload of every notice on subject until
// the returned function unsubscribes; it returns an error when the
// subscription cannot be made.
func (n *Notices) Subscribe(subject string, handle func(payload []byte)) (func() error, error) {
	sub, err := n.nc.Subscribe(subject, func(m *nats.Msg) { handle(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	return sub.Unsubscribe, nil
}
