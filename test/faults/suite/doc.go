//go:build faults

// Package suite is the long fault suite (make test-faults). Each test
// drives a steady load of thousands of attempts through the real HTTP API,
// students sending Idempotency-Keys and retrying on 503 or a transport
// error with the same key (as the HTTP contract tells clients to), injects one fault,
// and then compares PostgreSQL with what the clients were told: every
// attempt a client got a 202 for is stored, none twice, each with the score
// and submitted_at of its 202 body. The tests run one after the other: on a
// 2-core machine the load, the API, the workers, NATS and PostgreSQL
// already share the CPUs. One file per fault; the shared pieces are
// package faults.
package suite
