// Package exams holds the end-to-end tests of timed exams (API v1.1,
// docs/exams.md): each runs API instances and workers through the
// binary's wiring (in this process, or as processes of the binary itself)
// on a private PostgreSQL database and JetStream server, and speaks to
// them through the typed client. It has no code of its own.
package exams
