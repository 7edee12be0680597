// Package checks holds the end-to-end tests of code checks (API v1.1,
// "Code checks"; docs/checker.md): API instances, workers and checkers
// run through the binary's wiring (in this process, or as processes of
// the binary itself) on a private PostgreSQL database and JetStream
// server, against checker/judge0test's fake Judge0, and are spoken to
// through the typed client. It has no code of its own.
package checks
