// Package faults holds quizstream's fault tests and what they share: each
// test injects one fault of DESIGN.md's failure model into a private
// installation (package apptest) and then compares PostgreSQL with what
// clients were told (Ledger and Check). The quick faults run with every
// `make test`, one file each; the long suite, steady load for minutes with
// a fault injected, is package suite below, behind the build tag faults.
//
// The helpers here take testing.TB and fail it on what they cannot do;
// the ones that run goroutines (Proxy, Watch, Load, Steady) stop them when
// the test ends.
package faults
