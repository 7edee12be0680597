// Package readme runs the README's "Try it" commands, as a reader would
// paste them, against a real stack, and checks that they print what the
// README says they print: the example cannot rot. It has no code of its
// own.
package readme
