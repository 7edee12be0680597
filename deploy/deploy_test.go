package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/deploy"
)

// exampleEnv is deploy/.env.example with every secret filled in.
func exampleEnv(t *testing.T) func(string) (string, bool) {
	t.Helper()
	env, err := deploy.EnvFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		if v == "" {
			env[k] = "secret" + k
		}
	}
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func loadCompose(t *testing.T) *deploy.Compose {
	t.Helper()
	c, err := deploy.LoadCompose("compose.yaml", exampleEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	settingsMu sync.Mutex
	settings   = map[string]map[string]bool{}
)

// roleSettings returns the variables `quizstream <role>` reads, from the
// binary built from this module.
func roleSettings(t *testing.T, role string) map[string]bool {
	t.Helper()
	settingsMu.Lock()
	defer settingsMu.Unlock()
	if s, ok := settings[role]; ok {
		return s
	}
	s, err := deploy.Settings(apptest.Binary(t), role)
	if err != nil {
		t.Fatal(err)
	}
	settings[role] = s
	return s
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pinnedNATS returns the nats-server version go.mod pins, without its v.
func pinnedNATS(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("go.mod pins no nats-server")
	}
	return string(m[1])
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return n
}

// Every YAML and JSON file of the kit parses, every document of it.
func TestEveryFileParses(t *testing.T) {
	t.Parallel()
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			dec := yaml.NewDecoder(strings.NewReader(string(raw)))
			for {
				var v any
				if err := dec.Decode(&v); err == io.EOF {
					break
				} else if err != nil {
					t.Errorf("%s: %v", path, err)
					break
				}
			}
		case ".json":
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		default:
			return nil
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("only %d YAML and JSON files found", n)
	}
}

// natsConfig reads deploy/nats/nats.conf as the server does, for node.
func natsConfig(t *testing.T, node string) *server.Options {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", node)
	t.Setenv("NATS_USER", "quizstream")
	t.Setenv("NATS_PASSWORD", "secret")
	opts, err := server.ProcessConfigFile("nats/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// The compose file runs the process set of the design: PostgreSQL, three
// NATS servers clustered with JetStream, migrate and stream apply first
// (the others wait for them to complete), 2 api, 2 worker, the exporters,
// Prometheus and Grafana; every quizstream container's environment is
// made of settings its command reads; ports, probes and scrape targets
// agree.
func TestCompose(t *testing.T) { // not parallel: natsConfig sets the environment
	c := loadCompose(t)
	roles := map[string][]string{}
	for _, name := range keys(c.Services) {
		s := c.Services[name]
		if !s.Quizstream() {
			continue
		}
		role := deploy.Role(s.Command)
		roles[role] = append(roles[role], name)
		if bad := deploy.Unknown(keys(s.Environment), roleSettings(t, role)); len(bad) > 0 {
			t.Errorf("%s (quizstream %s): variables the command does not read: %v", name, role, bad)
		}
	}
	want := map[string]int{"api": 2, "worker": 2, "checker": 1, "migrate": 1, "stream apply": 1, "seed": 1}
	for role, n := range want {
		if len(roles[role]) != n {
			t.Errorf("quizstream %s: services %v, want %d", role, roles[role], n)
		}
	}

	// Setup first: api and worker wait for migrate and stream apply to
	// complete; stream apply waits for the NATS servers to be healthy.
	for _, role := range []string{"api", "worker", "checker", "seed"} {
		for _, name := range roles[role] {
			for _, setup := range append(roles["migrate"], roles["stream apply"]...) {
				if got := c.Services[name].DependsOn[setup]; got != "service_completed_successfully" {
					t.Errorf("%s waits for %s with %q, want service_completed_successfully", name, setup, got)
				}
			}
		}
	}
	var natsNodes []string
	for _, name := range keys(c.Services) {
		if strings.HasPrefix(c.Services[name].Image, "nats:") {
			natsNodes = append(natsNodes, name)
		}
	}
	if len(natsNodes) != 3 {
		t.Fatalf("NATS servers: %v, want 3", natsNodes)
	}
	for _, sa := range roles["stream apply"] {
		for _, n := range natsNodes {
			if got := c.Services[sa].DependsOn[n]; got != "service_healthy" {
				t.Errorf("%s waits for %s with %q, want service_healthy", sa, n, got)
			}
		}
	}

	// The streams are R3, and every process expects what stream apply
	// made (a process whose STREAM_REPLICAS differs refuses to start).
	for _, role := range []string{"api", "worker", "checker", "stream apply"} {
		for _, name := range roles[role] {
			if got := c.Services[name].Environment["STREAM_REPLICAS"]; got != "3" {
				t.Errorf("%s: STREAM_REPLICAS=%q, want 3", name, got)
			}
		}
	}

	// NATS: the pinned version, one config for every node, the cluster's
	// routes are the three services, and the clients reach the port the
	// config listens on.
	opts := natsConfig(t, natsNodes[0])
	if !opts.JetStream || opts.Cluster.Name == "" || !opts.SyncAlways {
		t.Errorf("nats.conf: jetstream %v, cluster %q, sync always %v; want JetStream in a named cluster, syncing every write (3 nodes on one host)",
			opts.JetStream, opts.Cluster.Name, opts.SyncAlways)
	}
	var routes []string
	for _, r := range opts.Routes {
		if r.Port() != strconv.Itoa(opts.Cluster.Port) {
			t.Errorf("route %s: not the cluster port %d", r, opts.Cluster.Port)
		}
		routes = append(routes, r.Hostname())
	}
	sort.Strings(routes)
	if strings.Join(routes, ",") != strings.Join(natsNodes, ",") {
		t.Errorf("routes to %v, NATS services %v", routes, natsNodes)
	}
	if opts.ServerName != natsNodes[0] || opts.Users == nil && opts.Username == "" {
		t.Errorf("nats.conf: server name %q (want it from NATS_SERVER_NAME), user %q", opts.ServerName, opts.Username)
	}
	for _, n := range natsNodes {
		s := c.Services[n]
		if got, want := strings.TrimSuffix(strings.TrimPrefix(s.Image, "nats:"), "-alpine"), pinnedNATS(t); got != want {
			t.Errorf("%s: image %s, want the version go.mod pins, %s", n, s.Image, want)
		}
		if s.Environment["NATS_SERVER_NAME"] != n {
			t.Errorf("%s: NATS_SERVER_NAME=%q", n, s.Environment["NATS_SERVER_NAME"])
		}
		if !strings.Contains(strings.Join(s.Healthcheck.Test, " "), fmt.Sprintf(":%d/healthz", opts.HTTPPort)) {
			t.Errorf("%s: health check %v is not the monitoring port %d's /healthz", n, s.Healthcheck.Test, opts.HTTPPort)
		}
	}
	var quizstreamUsers []string
	for _, name := range keys(c.Services) {
		s := c.Services[name]
		if u, ok := s.Environment["NATS_URL"]; ok {
			var hosts []string
			for _, one := range strings.Split(u, ",") {
				h, p, _ := net.SplitHostPort(strings.TrimPrefix(one, "nats://"))
				if p != strconv.Itoa(opts.Port) {
					t.Errorf("%s: NATS_URL %s: port %s, the servers listen on %d", name, one, p, opts.Port)
				}
				hosts = append(hosts, h)
			}
			if strings.Join(hosts, ",") != strings.Join(natsNodes, ",") {
				t.Errorf("%s: NATS_URL reaches %v, want every node %v", name, hosts, natsNodes)
			}
			quizstreamUsers = append(quizstreamUsers, s.Environment["NATS_USER"])
			if s.Environment["NATS_PASSWORD"] != c.Services[natsNodes[0]].Environment["NATS_PASSWORD"] {
				t.Errorf("%s: NATS_PASSWORD differs from the servers'", name)
			}
		}
	}
	for _, u := range quizstreamUsers {
		if u != c.Services[natsNodes[0]].Environment["NATS_USER"] {
			t.Errorf("a NATS_USER %q that the servers do not know", u)
		}
	}

	// Prometheus scrapes every api and worker on its operations listener,
	// and every NATS server through an exporter.
	targets := scrapeTargets(t)
	for _, role := range []string{"api", "worker", "checker"} {
		for _, name := range roles[role] {
			s := c.Services[name]
			addr := s.Environment["METRICS_ADDR"]
			if addr == "" || addr == "off" {
				t.Errorf("%s: no operations listener", name)
				continue
			}
			want := fmt.Sprintf("%s:%d", name, port(t, addr))
			if !targets["quizstream-"+role][want] {
				t.Errorf("%s: Prometheus does not scrape %s (job quizstream-%s: %v)", name, want, role, keys(targets["quizstream-"+role]))
			}
		}
		for _, name := range roles["api"] {
			s := c.Services[name]
			lp := port(t, s.Environment["LISTEN_ADDR"])
			if len(s.Ports) != 1 || !strings.HasSuffix(s.Ports[0], ":"+strconv.Itoa(lp)) {
				t.Errorf("%s: publishes %v, listens on %d", name, s.Ports, lp)
			}
			// stop_grace_period covers the drain.
			grace, _ := time.ParseDuration(s.StopGracePeriod)
			drain, _ := time.ParseDuration(s.Environment["DRAIN_DELAY"])
			shutdown, _ := time.ParseDuration(s.Environment["SHUTDOWN_TIMEOUT"])
			if shutdown == 0 || grace <= drain+shutdown {
				t.Errorf("%s: stop_grace_period %s is not above DRAIN_DELAY %s + SHUTDOWN_TIMEOUT %s", name, grace, drain, shutdown)
			}
		}
	}
	var exporters int
	for _, name := range keys(c.Services) {
		s := c.Services[name]
		if !strings.Contains(s.Image, "prometheus-nats-exporter") {
			continue
		}
		exporters++
		url := s.Command[len(s.Command)-1]
		if !regexp.MustCompile(fmt.Sprintf(`^http://nats-\d:%d$`, opts.HTTPPort)).MatchString(url) {
			t.Errorf("%s: watches %s, not a node's monitoring port %d", name, url, opts.HTTPPort)
		}
		if !targets["nats"][name+":7777"] {
			t.Errorf("%s: not scraped", name)
		}
	}
	if exporters != 3 {
		t.Errorf("%d NATS exporters, want one a node", exporters)
	}
	if len(targets["postgres"]) != 1 {
		t.Errorf("postgres_exporter targets: %v", keys(targets["postgres"]))
	}
}

// scrapeTargets reads prometheus.yml: job -> targets.
func scrapeTargets(t *testing.T) map[string]map[string]bool {
	t.Helper()
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	raw, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		out[sc.JobName] = map[string]bool{}
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				out[sc.JobName][tg] = true
			}
		}
	}
	return out
}
