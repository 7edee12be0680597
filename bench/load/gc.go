package load

import (
	"os"
	"runtime/debug"
	"strconv"
)

// GCPercent is the garbage collector's target in a process generating
// load: the load generator shares the machine with the stack it
// measures, and every CPU-second its collector spends is one the stack
// does not get. At GOGC=100 the collector took about a fifth of the
// generator's CPU; at 400 its CPU per request fell by that, for a heap a
// few times larger.
const GCPercent = 400

// TuneGC sets the collector of a load-generating process to GCPercent,
// unless GOGC says otherwise.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}

// GOGC is the collector target of a process that called TuneGC.
func GOGC() string {
	if v := os.Getenv("GOGC"); v != "" {
		return v
	}
	return strconv.Itoa(GCPercent)
}
