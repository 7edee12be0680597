package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// procTimes is a process's CPU time in seconds from /proc/<pid>/stat: its
// own (user + system) and that of its children it has waited for.
type procTimes struct {
	comm     string
	ppid     int
	self     float64
	children float64
}

// readStat parses /proc/<pid>/stat; it returns an error when the process
// is gone or the file is not as proc(5) describes it.
func readStat(pid int) (procTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (procTimes, error) {
	// The command name is in parentheses and may hold spaces or ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procTimes{}, fmt.Errorf("stat: no command name in %q", b)
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	num := func(i int) float64 {
		v, _ := strconv.ParseFloat(f[i-3], 64)
		return v / clockTicks
	}
	ppid, _ := strconv.Atoi(f[1])
	return procTimes{
		comm: string(b[open+1 : end]), ppid: ppid,
		self: num(14) + num(15), children: num(16) + num(17),
	}, nil
}

// cpuOf returns a process's own CPU seconds, 0 when it is gone.
func cpuOf(pid int) float64 {
	t, err := readStat(pid)
	if err != nil {
		return 0
	}
	return t.self
}

// peakRSS returns VmHWM of a process in KiB, 0 when unknown.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// resetPeakRSS starts VmHWM over from the current RSS (proc(5),
// clear_refs "5"); it reports whether the kernel allowed it.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// postgresCPU is the CPU seconds of the PostgreSQL server: every postgres
// process's own time plus the postmaster's reaped children (backends that
// exited), and apart, by pid, those of the backends whose title names
// database db.
func postgresCPU(db string) (all float64, ofDB map[int]float64) {
	ofDB = map[int]float64{}
	entries, _ := os.ReadDir("/proc")
	type p struct {
		pid int
		t   procTimes
	}
	var ps []p
	isPG := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		t, err := readStat(pid)
		if err != nil || t.comm != "postgres" {
			continue
		}
		ps = append(ps, p{pid, t})
		isPG[pid] = true
	}
	for _, x := range ps {
		all += x.t.self
		if !isPG[x.t.ppid] { // the postmaster
			all += x.t.children
		}
		if db == "" {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(x.pid), "cmdline"))
		if backendOf(string(cmd)) == db {
			ofDB[x.pid] = x.t.self
		}
	}
	return all, ofDB
}

// backendOf returns the database of a backend's process title, "postgres:
// [<cluster name>:] <user> <database> <client> <state>", or "" for any
// other postgres process.
func backendOf(cmdline string) string {
	f := strings.Fields(strings.ReplaceAll(cmdline, "\x00", " "))
	if len(f) < 4 || f[0] != "postgres:" {
		return ""
	}
	f = f[1:]
	if strings.HasSuffix(f[0], ":") { // cluster_name
		f = f[1:]
	}
	if len(f) < 3 || !strings.Contains(f[2], "(") && !strings.HasPrefix(f[2], "[local]") {
		return "" // not "<user> <database> <host(port)>"
	}
	return f[1]
}

// machineCPU returns the CPU seconds all CPUs spent since boot running
// programs (/proc/stat's user, nice and system), in interrupts (irq and
// softirq: loopback networking, mostly) and stolen by the hypervisor, and
// the load average.
func machineCPU() (busy, irq, steal float64, load string) {
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		v := func(i int) float64 {
			if i >= len(f) {
				return 0
			}
			n, _ := strconv.ParseFloat(f[i], 64)
			return n / clockTicks
		}
		busy, irq, steal = v(1)+v(2)+v(3), v(6)+v(7), v(8)
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(l))[:3], " ")
	}
	return busy, irq, steal, load
}

// diskStat is a block device's counters from /proc/diskstats.
type diskStat struct {
	device  string
	writes  float64 // writes completed
	flushes float64 // flush requests completed (fsync reaches the disk as these)
	busyMs  float64 // time the device had I/O in flight
}

// diskOf returns the counters of the device holding path; zero when
// unknown (a file system on no block device, say).
func diskOf(path string) diskStat {
	var st syscall.Stat_t
	if path == "" || syscall.Stat(path, &st) != nil {
		return diskStat{}
	}
	dev := uint64(st.Dev)
	major := (dev>>8)&0xfff | (dev>>32)&^0xfff
	minor := dev&0xff | (dev>>12)&^0xff
	b, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return diskStat{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 14 || f[0] != strconv.FormatUint(major, 10) || f[1] != strconv.FormatUint(minor, 10) {
			continue
		}
		num := func(i int) float64 {
			if i >= len(f) {
				return 0
			}
			v, _ := strconv.ParseFloat(f[i], 64)
			return v
		}
		// Fields after the name: 5th writes completed, 10th time doing
		// I/O, 16th flush requests completed (Linux 5.5+).
		return diskStat{device: f[2], writes: num(7), busyMs: num(12), flushes: num(18)}
	}
	return diskStat{}
}

// diskActivity is what a disk did during a window: the whole machine's
// use of it, the benchmark's and everything else's.
type diskActivity struct {
	Device      string  `json:"device"`
	WritesPerS  float64 `json:"writes_per_s"`
	FlushesPerS float64 `json:"flushes_per_s"`
	BusyPct     float64 `json:"busy_pct"`
}

func diskBetween(before, after diskStat, d time.Duration) *diskActivity {
	if after.device == "" || d <= 0 {
		return nil
	}
	s := d.Seconds()
	return &diskActivity{
		Device: after.device, WritesPerS: (after.writes - before.writes) / s,
		FlushesPerS: (after.flushes - before.flushes) / s, BusyPct: (after.busyMs - before.busyMs) / 10 / s,
	}
}
