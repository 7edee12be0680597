package deploy_test

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quizstream/quizstream/deploy"
)

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
				if role == "stream apply" || role == "api" || role == "worker" || role == "checker" {
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
	for _, r := range []string{"api", "worker", "checker", "migrate", "stream apply"} {
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
