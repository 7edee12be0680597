package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/quizstream/quizstream/api"
	"github.com/quizstream/quizstream/app/apptest"
	"github.com/quizstream/quizstream/deploy"
	"github.com/quizstream/quizstream/store"
	"github.com/quizstream/quizstream/streams"
)

// pending lists quizstream_* series the dashboard or the rules use that no
// process exports yet, each with why. Empty it as they land: the test
// fails on a name listed here that the processes do export.
var pending = map[string]string{}

// eventOnly lists series that a process exports only after an event this
// test does not cause in a few seconds; they are checked against the
// metric names the source code registers instead.
var eventOnly = map[string]string{
	"quizstream_worker_batches_handed_back_total": "a batch handed back (held for MAX_BATCH_HOLD, or at shutdown)",
	"quizstream_exam_timers_total":                "an exam timer firing (deadline + grace + settle: over a minute)",
}

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
	want := map[string]int{"api": 2, "worker": 2, "migrate": 1, "stream apply": 1, "seed": 1}
	for role, n := range want {
		if len(roles[role]) != n {
			t.Errorf("quizstream %s: services %v, want %d", role, roles[role], n)
		}
	}

	// Setup first: api and worker wait for migrate and stream apply to
	// complete; stream apply waits for the NATS servers to be healthy.
	for _, role := range []string{"api", "worker", "seed"} {
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
	for _, role := range []string{"api", "worker", "stream apply"} {
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
	for _, role := range []string{"api", "worker"} {
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

// manifest is the part of a Kubernetes object this test reads.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int      `yaml:"minReplicas"`
		Template    template `yaml:"template"`
	} `yaml:"spec"`
}

type template struct {
	Metadata struct {
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
		Containers                    []container `yaml:"containers"`
	} `yaml:"spec"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
		SecretRef    *struct{ Name string } `yaml:"secretRef"`
	} `yaml:"envFrom"`
	StartupProbe   *probe `yaml:"startupProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

func loadManifests(t *testing.T) map[string]map[string]manifest {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]manifest{}
	for _, f := range files {
		if strings.HasSuffix(f, "nats-values.yaml") || strings.HasSuffix(f, "kustomization.yaml") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		for {
			var m manifest
			if err := dec.Decode(&m); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if out[m.Kind] == nil {
				out[m.Kind] = map[string]manifest{}
			}
			out[m.Kind][m.Metadata.Name] = m
		}
	}
	return out
}

// The manifests: every container's environment (its env and the
// ConfigMaps and Secrets it takes whole) is made of settings its command
// reads; probes are on the operations listener's /livez and /readyz; the
// grace period covers DRAIN_DELAY + SHUTDOWN_TIMEOUT; the PodDisruptionBudgets,
// the HPA and kustomization name what exists; the NATS values pin the
// server go.mod pins, 3 replicas with file storage.
func TestKubernetes(t *testing.T) {
	t.Parallel()
	ms := loadManifests(t)
	envOf := func(c container) map[string]string {
		env := map[string]string{}
		for _, ef := range c.EnvFrom {
			var src map[string]string
			switch {
			case ef.ConfigMapRef != nil:
				cm, ok := ms["ConfigMap"][ef.ConfigMapRef.Name]
				if !ok {
					t.Errorf("%s: no ConfigMap %s", c.Name, ef.ConfigMapRef.Name)
				}
				src = cm.Data
			case ef.SecretRef != nil:
				s, ok := ms["Secret"][ef.SecretRef.Name]
				if !ok {
					t.Errorf("%s: no Secret %s", c.Name, ef.SecretRef.Name)
				}
				src = s.StringData
			}
			for k, v := range src {
				env[k] = v
			}
		}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		return env
	}
	roles := map[string]bool{}
	for _, kind := range []string{"Deployment", "Job"} {
		for name, m := range ms[kind] {
			spec := m.Spec.Template.Spec
			for _, c := range spec.Containers {
				role := deploy.Role(c.Args)
				roles[role] = true
				env := envOf(c)
				if bad := deploy.Unknown(keys(env), roleSettings(t, role)); len(bad) > 0 {
					t.Errorf("%s/%s (quizstream %s): variables the command does not read: %v", kind, name, role, bad)
				}
				if c.Image != "quizstream" {
					t.Errorf("%s/%s: image %q, want quizstream (kustomization sets the registry)", kind, name, c.Image)
				}
				if role == "stream apply" || role == "api" || role == "worker" {
					if env["STREAM_REPLICAS"] != "3" {
						t.Errorf("%s/%s: STREAM_REPLICAS=%q, want 3", kind, name, env["STREAM_REPLICAS"])
					}
				}
				if kind != "Deployment" {
					continue
				}
				ops := -1
				for _, p := range c.Ports {
					if p.Name == "ops" {
						ops = p.ContainerPort
					}
				}
				if ops != port(t, env["METRICS_ADDR"]) {
					t.Errorf("%s: port ops %d, METRICS_ADDR %q", name, ops, env["METRICS_ADDR"])
				}
				if a := m.Spec.Template.Metadata.Annotations["prometheus.io/port"]; a != strconv.Itoa(ops) {
					t.Errorf("%s: scraped on %q, operations listener on %d", name, a, ops)
				}
				for what, p := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
					want := map[string]string{"liveness": "/livez", "readiness": "/readyz"}[what]
					if p == nil || p.HTTPGet.Path != want || p.HTTPGet.Port != "ops" {
						t.Errorf("%s: %s probe %+v, want %s on port ops", name, what, p, want)
					}
				}
				if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
					t.Errorf("%s: resources %+v", name, c.Resources)
				}
				drain, _ := time.ParseDuration(orZero(env["DRAIN_DELAY"]))
				shutdown, err := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
				if err != nil {
					t.Errorf("%s: SHUTDOWN_TIMEOUT %q: %v", name, env["SHUTDOWN_TIMEOUT"], err)
				}
				if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain+shutdown {
					t.Errorf("%s: terminationGracePeriodSeconds %v not above DRAIN_DELAY %s + SHUTDOWN_TIMEOUT %s", name, g, drain, shutdown)
				}
			}
		}
	}
	for _, r := range []string{"api", "worker", "migrate", "stream apply"} {
		if !roles[r] {
			t.Errorf("no workload runs quizstream %s", r)
		}
	}
	labelsOf := func(name string) map[string]string {
		d, ok := ms["Deployment"][name]
		if !ok {
			t.Errorf("no Deployment %s", name)
		}
		return d.Spec.Template.Metadata.Labels
	}
	for name, pdb := range ms["PodDisruptionBudget"] {
		matched := false
		for dn := range ms["Deployment"] {
			if subset(pdb.Spec.Selector.MatchLabels, labelsOf(dn)) {
				matched = true
			}
		}
		if !matched {
			t.Errorf("PodDisruptionBudget %s selects no Deployment", name)
		}
	}
	hpa, ok := ms["HorizontalPodAutoscaler"]["quizstream-api"]
	if !ok || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || labelsOf(hpa.Spec.ScaleTargetRef.Name)["app.kubernetes.io/name"] != "quizstream-api" {
		t.Errorf("HPA: %+v", hpa.Spec.ScaleTargetRef)
	}
	if api := ms["Deployment"]["quizstream-api"]; api.Spec.Replicas == nil || hpa.Spec.MinReplicas < 2 {
		t.Errorf("API replicas %v, HPA min %d", api.Spec.Replicas, hpa.Spec.MinReplicas)
	}

	// kustomization lists every manifest file.
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	raw, err := os.ReadFile("kubernetes/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &kust); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	listed := map[string]bool{}
	for _, r := range kust.Resources {
		listed[r] = true
		if _, err := os.Stat(filepath.Join("kubernetes", r)); err != nil {
			t.Errorf("kustomization: %v", err)
		}
	}
	for _, f := range files {
		b := filepath.Base(f)
		if b != "kustomization.yaml" && b != "nats-values.yaml" && !listed[b] {
			t.Errorf("kustomization does not list %s", b)
		}
	}

	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled   bool `yaml:"enabled"`
				FileStore struct {
					Enabled bool `yaml:"enabled"`
					PVC     struct {
						Enabled bool `yaml:"enabled"`
					} `yaml:"pvc"`
				} `yaml:"fileStore"`
			} `yaml:"jetstream"`
		} `yaml:"config"`
		Container struct {
			Image struct {
				Tag string `yaml:"tag"`
			} `yaml:"image"`
			Env map[string]struct {
				ValueFrom struct {
					SecretKeyRef struct{ Name, Key string } `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			} `yaml:"env"`
		} `yaml:"container"`
	}
	raw, err = os.ReadFile("kubernetes/nats-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	if v := values.Config; !v.Cluster.Enabled || v.Cluster.Replicas != 3 || !v.JetStream.Enabled || !v.JetStream.FileStore.Enabled || !v.JetStream.FileStore.PVC.Enabled {
		t.Errorf("nats-values: %+v, want a 3-node cluster with JetStream on persistent file storage", v)
	}
	if got := strings.TrimSuffix(values.Container.Image.Tag, "-alpine"); got != pinnedNATS(t) {
		t.Errorf("nats-values: image %s, want the version go.mod pins, %s", values.Container.Image.Tag, pinnedNATS(t))
	}
	ref := values.Container.Env["NATS_PASSWORD"].ValueFrom.SecretKeyRef
	if s, ok := ms["Secret"][ref.Name]; !ok || s.StringData[ref.Key] == "" {
		t.Errorf("nats-values: NATS_PASSWORD from %+v, which secrets.yaml does not hold", ref)
	}
}

func orZero(s string) string {
	if s == "" {
		return "0s"
	}
	return s
}

// subset reports whether every label of sel is in labels (false for an
// empty sel: it would select everything).
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// rules reads the alert rules.
func rules(t *testing.T) []struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
} {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	raw, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var out []struct {
		Alert       string            `yaml:"alert"`
		Expr        string            `yaml:"expr"`
		Annotations map[string]string `yaml:"annotations"`
	}
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// slug is a Markdown heading's anchor as GitHub makes it.
func slug(heading string) string {
	s := strings.ToLower(strings.TrimSpace(heading))
	s = regexp.MustCompile("[^a-z0-9 _-]").ReplaceAllString(s, "")
	return strings.ReplaceAll(s, " ", "-")
}

// Every alert links a section of docs/operations.md that exists, and has
// a promtool test case (alerts_test.yml names every alert).
func TestAlertsHaveRunbooksAndTests(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,4} (.+)$`).FindAllStringSubmatch(string(doc), -1) {
		anchors[slug(m[1])] = true
	}
	tests, err := os.ReadFile("prometheus/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	rs := rules(t)
	if len(rs) < 15 {
		t.Fatalf("%d rules", len(rs))
	}
	for _, r := range rs {
		u := r.Annotations["runbook_url"]
		_, anchor, ok := strings.Cut(u, "docs/operations.md#")
		if !ok || !anchors[anchor] {
			t.Errorf("%s: runbook %q is no section of docs/operations.md", r.Alert, u)
		}
		if !regexp.MustCompile(`alertname: ` + r.Alert + `\n\s+exp_alerts: \[\{`).Match(tests) {
			t.Errorf("%s: no promtool case where it fires", r.Alert)
		}
	}
}

var seriesName = regexp.MustCompile(`\bquizstream_[a-z0-9_]+`)

// usedSeries returns every quizstream_* name the dashboard and the rules
// use, and where.
func usedSeries(t *testing.T) map[string]string {
	t.Helper()
	used := map[string]string{}
	for _, r := range rules(t) {
		for _, n := range seriesName.FindAllString(r.Expr, -1) {
			used[n] = "alert " + r.Alert
		}
	}
	raw, err := os.ReadFile("grafana/dashboards/quizstream.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, n := range seriesName.FindAllString(tg.Expr, -1) {
				used[n] = "panel " + p.Title
			}
		}
	}
	return used
}

// scrape returns the names of the samples at url.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// Every quizstream_* series the dashboard and the alerts use is exported
// by an api or a worker process, started through the binary's wiring
// (apptest), after one of each thing the panels count: an attempt stored,
// a 429, an exam session started.
func TestSeriesExported(t *testing.T) {
	t.Parallel()
	s := apptest.New(t, streams.StreamConfig{})
	apiCfg := s.Config(t)
	apiCfg.API, apiCfg.MetricsAddr = true, "127.0.0.1:0"
	apiCfg.APIConfig = api.Config{ContentReload: -1, AttemptRate: 0.001, AttemptBurst: 3}
	apiIn := s.Start(t, apiCfg)
	workerCfg := s.Config(t)
	workerCfg.Workers, workerCfg.MetricsAddr = 1, "127.0.0.1:0"
	workerIn := s.Start(t, workerCfg)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := apptest.Signup(t, apiIn.URL, "metrics@example.com")
	q := s.Quizzes[0]
	var timed store.Quiz
	for _, course := range store.DemoContent(store.DefaultDemo) {
		for _, qz := range course.Quizzes {
			if qz.TimeLimit > 0 && timed.TimeLimit == 0 {
				timed = qz
			}
		}
	}
	// A session start takes from the attempt bucket too: first.
	if _, err := c.StartSession(ctx, timed.ID.String()); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{"answers": apptest.AnswersFor(q, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// One attempt, sent again until the student's burst is spent: 202s,
	// then a 429.
	var statuses []int
	for len(statuses) < 5 && !slices.Contains(statuses, http.StatusTooManyRequests) {
		status, _, _, err := c.Do(ctx, http.MethodPost, "/api/v1/quizzes/"+q.ID.String()+"/attempts",
			http.Header{"Idempotency-Key": {"one"}}, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, status)
	}
	if statuses[0] != http.StatusAccepted || !slices.Contains(statuses, http.StatusTooManyRequests) {
		t.Fatalf("attempt POSTs: %v, want a 202 and then a 429", statuses)
	}
	apptest.WaitFor(t, 30*time.Second, "the attempt stored", func() bool { return s.CountAttempts(t) == 1 })

	var exported map[string]bool
	used := usedSeries(t)
	apptest.WaitFor(t, 30*time.Second, "every series the dashboard and the alerts use", func() bool {
		exported = scrape(t, apiIn.OpsURL()+"/metrics")
		for n := range scrape(t, workerIn.OpsURL()+"/metrics") {
			exported[n] = true
		}
		for n := range used {
			if !exported[n] && pending[n] == "" && eventOnly[n] == "" {
				return false
			}
		}
		return true
	})
	source := registeredNames(t)
	for _, n := range keys(used) {
		switch {
		case exported[n] && pending[n] != "":
			t.Errorf("%s is exported now: take it off the pending list", n)
		case exported[n]:
		case pending[n] != "":
			t.Logf("pending: %s (%s), used by %s", n, pending[n], used[n])
		case eventOnly[n] != "":
			if !source[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] {
				t.Errorf("%s (used by %s) is registered nowhere in the source", n, used[n])
			}
		default:
			t.Errorf("%s (used by %s) is not exported", n, used[n])
		}
	}
}

// registeredNames returns every "quizstream_..." string literal of the
// module's non-test Go files: the metric names a process can register.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	lit := regexp.MustCompile(`"(quizstream_[a-z0-9_]+)"`)
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bench" || d.Name() == "test") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllSubmatch(raw, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
