package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quizstream/quizstream/api"
)

// pinned is every flag of every command as it was when the hand-written
// binder was replaced by ff: its name, the variable that sets it (none for
// a command's own flags), its default, and the commands that take it.
var pinned = []struct{ flag, env, def, cmds string }{
	{"access-log-level", "ACCESS_LOG_LEVEL", "debug", "api,dev"},
	{"access-log-sample", "ACCESS_LOG_SAMPLE", "1", "api,dev"},
	{"ack-wait", "ACK_WAIT", "30s", "api,worker,checker,dev,stream"},
	{"attempt-burst", "ATTEMPT_BURST", "120", "api,dev"},
	{"attempt-rate", "ATTEMPT_RATE", "2", "api,dev"},
	{"body-limit", "BODY_LIMIT", "65536", "api,dev"},
	{"content-max-age", "CONTENT_MAX_AGE", "1m0s", "api,dev"},
	{"content-reload", "CONTENT_RELOAD", "1m0s", "api,dev"},
	{"database-url", "DATABASE_URL", "postgres://localhost:5432/quizstream?sslmode=disable", "api,worker,checker,migrate,seed,content,dev,replay"},
	{"drain-delay", "DRAIN_DELAY", "0s", "api,dev"},
	{"exam-grace", "EXAM_GRACE", "30s", "api,dev"},
	{"exam-session-cache", "EXAM_SESSION_CACHE", "100000", "api,dev"},
	{"exam-settle", "EXAM_SETTLE", "2s", "api,dev"},
	{"exam-timers-max-bytes", "EXAM_TIMERS_MAX_BYTES", "1073741824", "api,worker,checker,dev,stream"},
	{"exams-max-age", "EXAMS_MAX_AGE", "168h0m0s", "api,worker,checker,dev,stream"},
	{"exams-max-bytes", "EXAMS_MAX_BYTES", "10737418240", "api,worker,checker,dev,stream"},
	{"hash-concurrency", "HASH_CONCURRENCY", strconv.Itoa(api.DefaultHashConcurrency()), "api,dev"},
	{"hash-wait", "HASH_WAIT", "2s", "api,dev"},
	{"idle-timeout", "IDLE_TIMEOUT", "1m0s", "api,dev"},
	{"listen-addr", "LISTEN_ADDR", "127.0.0.1:8080", "api,dev"},
	{"log-format", "LOG_FORMAT", "text", "api,worker,checker,migrate,seed,content,dev,dlq,stream,replay"},
	{"log-level", "LOG_LEVEL", "info", "api,worker,checker,migrate,seed,content,dev,dlq,stream,replay"},
	{"max-ack-pending", "MAX_ACK_PENDING", "20000", "api,worker,checker,dev,stream"},
	{"read-model-max-bytes", "READ_MODEL_MAX_BYTES", "8589934592", "api,worker,checker,dev,stream"},
	{"read-model-ttl", "READ_MODEL_TTL", "2880h0m0s", "api,worker,checker,dev,stream"},
	{"max-connections", "MAX_CONNECTIONS", "16384", "api,dev"},
	{"max-header-bytes", "MAX_HEADER_BYTES", "16384", "api,dev"},
	{"max-unsettled-per-student", "MAX_UNSETTLED_PER_STUDENT", "200", "api,dev"},
	{"metrics-addr", "METRICS_ADDR", "127.0.0.1:9090", "api,dev"},
	{"nats-creds", "NATS_CREDS", "", "api,worker,checker,seed,content,dev,dlq,stream,replay"},
	{"nats-nkey-seed-file", "NATS_NKEY_SEED_FILE", "", "api,worker,checker,seed,content,dev,dlq,stream,replay"},
	{"nats-password", "NATS_PASSWORD", "", "api,worker,checker,seed,content,dev,dlq,stream,replay"},
	{"nats-token", "NATS_TOKEN", "", "api,worker,checker,seed,content,dev,dlq,stream,replay"},
	{"nats-url", "NATS_URL", "", "api,worker,checker,seed,content,dev,dlq,stream,replay"},
	{"nats-user", "NATS_USER", "", "api,worker,checker,seed,content,dev,dlq,stream,replay"},
	{"pprof", "PPROF", "false", "api,worker,checker,dev"},
	{"publish-batch-max", "PUBLISH_BATCH_MAX", "500", "api,dev"},
	{"publish-batch-window", "PUBLISH_BATCH_WINDOW", "1ms", "api,dev"},
	{"publish-timeout", "PUBLISH_TIMEOUT", "5s", "api,dev"},
	{"rate-limit-keys", "RATE_LIMIT_KEYS", "100000", "api,dev"},
	{"read-timeout", "READ_TIMEOUT", "10s", "api,dev"},
	{"shutdown-timeout", "SHUTDOWN_TIMEOUT", "10s", "api,worker,checker,dev"},
	{"stream-duplicates", "STREAM_DUPLICATES", "2m0s", "api,worker,checker,dev,stream"},
	{"stream-max-age", "STREAM_MAX_AGE", "168h0m0s", "api,worker,checker,dev,stream"},
	{"stream-max-bytes", "STREAM_MAX_BYTES", "10737418240", "api,worker,checker,dev,stream"},
	{"stream-max-msgs", "STREAM_MAX_MSGS", "6000000", "api,worker,checker,dev,stream"},
	{"stream-replicas", "STREAM_REPLICAS", "1", "api,worker,checker,dev,stream"},
	{"token-cache-size", "TOKEN_CACHE_SIZE", "100000", "api,dev"},
	{"token-cache-ttl", "TOKEN_CACHE_TTL", "30s", "api,dev"},
	{"token-lifetime", "TOKEN_LIFETIME", "720h0m0s", "api,dev"},
	{"token-miss-burst", "TOKEN_MISS_BURST", "100", "api,dev"},
	{"token-miss-rate", "TOKEN_MISS_RATE", "10", "api,dev"},
	{"token-purge-interval", "TOKEN_PURGE_INTERVAL", "1h0m0s", "api,dev"},
	{"trusted-proxies", "TRUSTED_PROXIES", "", "api,dev"},
	{"write-timeout", "WRITE_TIMEOUT", "15s", "api,dev"},
	{"batch-max-wait", "BATCH_MAX_WAIT", "100ms", "worker,dev"},
	{"batch-size", "BATCH_SIZE", "500", "worker,dev,replay"},
	{"dead-letter-timeout", "DEAD_LETTER_TIMEOUT", "10s", "worker,dev"},
	{"exam-finalizers", "EXAM_FINALIZERS", "64", "worker,dev"},
	{"max-backoff", "MAX_BACKOFF", "2s", "worker,dev"},
	{"max-batch-hold", "MAX_BATCH_HOLD", "2m0s", "worker,dev"},
	{"metrics-addr", "METRICS_ADDR", "127.0.0.1:9091", "worker"},
	{"worker-statement-timeout", "WORKER_STATEMENT_TIMEOUT", "30s", "worker,dev"},
	{"workers", "WORKERS", "2", "worker,dev"},
	{"data-dir", "DATA_DIR", ".quizstream", "dev"},
	{"nats-port", "NATS_PORT", "4223", "dev"}, // -1 before: a new port on every start
	{"all", "", "false", "dlq"},
	{"limit", "", "100", "dlq"},
	{"force", "", "false", "stream"},
	{"diff-rows", "", "10", "replay"},
	{"dry-run", "", "false", "replay,content"},
	{"exams", "", "false", "replay"},
	{"from-seq", "", "1", "replay"},
	{"keep-shadow", "", "false", "replay"},
	{"lock-timeout", "", "30s", "replay"},
	{"rebuild", "", "", "replay"},
	{"since", "", "", "replay"},
	{"swap", "", "false", "replay"},
	{"until", "", "", "replay"},
	{"metrics-addr", "METRICS_ADDR", "127.0.0.1:9092", "checker"},
	{"checker-ack-wait", "CHECKER_ACK_WAIT", "1m0s", "api,worker,checker,dev,stream"},
	{"checks-max-age", "CHECKS_MAX_AGE", "168h0m0s", "api,worker,checker,dev,stream"},
	{"checks-max-bytes", "CHECKS_MAX_BYTES", "2147483648", "api,worker,checker,dev,stream"},
	{"checker-url", "CHECKER_URL", "", "checker,dev"},
	{"checker-token", "CHECKER_TOKEN", "", "checker,dev"},
	{"checker-languages", "CHECKER_LANGUAGES", "", "checker,dev"},
	{"checker-max-concurrent", "CHECKER_MAX_CONCURRENT", "8", "checker,dev"},
	{"checker-rate", "CHECKER_RATE", "20", "checker,dev"},
	{"checker-timeout", "CHECKER_TIMEOUT", "0s", "checker,dev"},
	{"checker-check-timeout", "CHECKER_CHECK_TIMEOUT", "0s", "checker,dev"},
	{"check-deadline", "CHECK_DEADLINE", "10m0s", "checker,dev"},
	{"checker-concurrency", "CHECKER_CONCURRENCY", "8", "checker,dev"},
	// Added since.
	{"read-model", "READ_MODEL", "true", "api,worker,checker,dev,stream"},
	{"signup-rate", "SIGNUP_RATE", "1", "api,dev"}, // with the three below, in place of LOGIN_RATE and LOGIN_BURST
	{"signup-burst", "SIGNUP_BURST", "2000", "api,dev"},
	{"login-failure-rate", "LOGIN_FAILURE_RATE", "1", "api,dev"},
	{"login-failure-burst", "LOGIN_FAILURE_BURST", "1000", "api,dev"},
	{"account-failure-rate", "ACCOUNT_FAILURE_RATE", "0.016666666666666666", "api,dev"},
	{"account-failure-burst", "ACCOUNT_FAILURE_BURST", "20", "api,dev"},
	{"pair-failure-rate", "PAIR_FAILURE_RATE", "0.016666666666666666", "api,dev"},
	{"pair-failure-burst", "PAIR_FAILURE_BURST", "10", "api,dev"},
	{"max-conns-per-address", "MAX_CONNS_PER_ADDRESS", "8192", "api,dev"},
	{"max-pending-per-address", "MAX_PENDING_PER_ADDRESS", "2048", "api,dev"},
	{"json", "", "false", "dlq,replay,stream,version,content"},
	{"o", "", "", "content"},
}

// The names, variables and defaults of every command's settings are
// those pinned: the same flags, each set by its variable, with its default
// when the variable is unset; and a command takes no other flag.
func TestSettingsPinned(t *testing.T) { // not parallel: it sets the environment
	for name := range commands {
		want := map[string]bool{}
		f := flagsOf(t, name, &config{})
		for _, p := range pinned {
			if !slices.Contains(strings.Split(p.cmds, ","), name) {
				continue
			}
			want[p.flag] = true
			fl := f.fs.Lookup(p.flag)
			switch {
			case fl == nil:
				t.Errorf("%s: no -%s", name, p.flag)
				continue
			case f.env[p.flag] != (p.env != ""):
				t.Errorf("%s -%s: set by a variable %v, want %v", name, p.flag, f.env[p.flag], p.env != "")
			case p.env != "" && envName(p.flag) != p.env:
				t.Errorf("%s -%s: variable %s, want %s", name, p.flag, envName(p.flag), p.env)
			}
			if p.env != "" {
				t.Setenv(p.env, "") // unset: an empty variable is no setting
			}
			if fl.DefValue != p.def {
				t.Errorf("%s -%s: default %q, want %q", name, p.flag, fl.DefValue, p.def)
			}
		}
		f.fs.VisitAll(func(fl *flag.Flag) {
			if !want[fl.Name] {
				t.Errorf("%s: -%s is not pinned", name, fl.Name)
			}
		})
		if err := f.parse(nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f.fs.VisitAll(func(fl *flag.Flag) {
			if fl.Value.String() != fl.DefValue {
				t.Errorf("%s -%s: %q with no variable set, want the default %q", name, fl.Name, fl.Value.String(), fl.DefValue)
			}
		})
	}
}

// Each setting is read from its variable; a flag beats it; a bad variable
// is a usage error that names it.
func TestSettingsFromEnvironment(t *testing.T) { // not parallel: it sets the environment
	var c config
	f := flagsOf(t, "dev", &c)
	want := map[string]string{}
	f.fs.VisitAll(func(fl *flag.Flag) {
		var v string
		var value any // a list is no flag.Getter
		if g, ok := fl.Value.(flag.Getter); ok {
			value = g.Get()
		}
		switch value.(type) {
		case time.Duration:
			v = "7m0s"
		case int, int64, uint64:
			v = "7"
		case float64:
			v = "0.7"
		case bool:
			v = strconv.FormatBool(fl.DefValue != "true")
		default:
			v = "x7," + fl.Name
		}
		t.Setenv(envName(fl.Name), v)
		want[fl.Name] = v
	})
	if err := f.parse([]string{"-body-limit", "200", "-trusted-proxies", "10.0.0.1, 10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	want["body-limit"], want["trusted-proxies"] = "200", "10.0.0.1,10.0.0.2"
	f.fs.VisitAll(func(fl *flag.Flag) {
		if got := fl.Value.String(); got != want[fl.Name] {
			t.Errorf("-%s = %q, want %q (from $%s or the flag)", fl.Name, got, want[fl.Name], envName(fl.Name))
		}
	})
	if c.API.PublishTimeout != 7*time.Minute || c.API.BodyLimit != 200 || c.API.AttemptRate != 0.7 || c.Worker.BatchSize != 7 ||
		c.ListenAddr != "x7,listen-addr" || !slices.Equal(c.API.TrustedProxies, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Errorf("config: %+v", c)
	}

	t.Setenv("PUBLISH_TIMEOUT", "soon")
	f = flagsOf(t, "api", &c)
	if err := f.parse(nil); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "PUBLISH_TIMEOUT") {
		t.Fatalf("a bad variable: %v, want a usage error naming it", err)
	}
}

// flagsOf returns the flag set of a command (of its first verb), as run
// builds it, setting c.
func flagsOf(t testing.TB, name string, c *config) *flags {
	t.Helper()
	cmd := commands[name]
	f, _, err := cmd.flags(name, c, cmd.verbs[:min(1, len(cmd.verbs))], io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}
