// Package readmodel holds the end-to-end tests of the student read model
// (docs/architecture.md, "Read model"): student reads answered without a
// PostgreSQL statement, fallbacks counted, no read going backwards while
// worker processes are SIGKILLed, and the model equal to PostgreSQL
// after it all. It runs quizstream through app/apptest and speaks
// through the typed client. It has no code of its own.
package readmodel
