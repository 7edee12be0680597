// Package exams holds the end-to-end tests of timed exams (API v1.1,
// docs/exams.md): each runs API instances and workers through the
// binary's wiring (in this process, or as processes of the binary itself)
// on a private PostgreSQL database and JetStream server, and speaks to
// them through the typed client. It has no code of its own.
//
// The tests that load the machine (thousands of students on a server
// built with the race detector) or hold margins in real time are not
// parallel, so they run one after another and only the light ones in
// parallel: CI runs other packages beside this one already. (A lock
// around them would deadlock: a test holding it waits for a parallel
// slot for its subtests that the tests waiting for the lock hold.)
package exams
