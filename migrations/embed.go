// Package migrations holds quizstream's versioned SQL schema, applied in
// order by the migrate subcommand (and by dev) through goose.
package migrations

import "embed"

// FS holds the numbered migration files.
//
//go:embed *.sql
var FS embed.FS
