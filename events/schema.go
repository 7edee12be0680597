package events

import "encoding/json"

// NewerSchema reports whether data is an AttemptSubmitted event of a
// schema version newer than this build knows: written by a newer
// quizstream during a rolling deploy, it is not poison, and a worker hands
// it back for a newer worker to store rather than dead-lettering it.
// Decode refuses such an event (ErrUndecodable) all the same.
func NewerSchema(data []byte) bool {
	var env struct {
		Type   string `json:"type"`
		Schema int    `json:"schema"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return false
	}
	return env.Type == TypeAttemptSubmitted && env.Schema > SchemaAttemptSubmitted
}
