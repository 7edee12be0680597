// Package e2e holds quizstream's end-to-end tests: each runs API instances
// and workers through the binary's wiring (in this process, or as separate
// processes of the binary itself) on a private PostgreSQL database and
// JetStream server, and speaks to them through the typed client as a
// learning site's backend would. It has no code of its own.
package e2e
