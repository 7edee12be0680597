package deploy_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// mounts returns a compose service's bind mounts, container path to the
// host path (relative to deploy/); named volumes are left out.
func mounts(volumes []string) map[string]string {
	out := map[string]string{}
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue
		}
		out[parts[1]] = filepath.Clean(parts[0])
	}
	return out
}

// Grafana in compose starts with the data source and the dashboard
// provisioned: the provisioning folder is mounted where Grafana reads it,
// the dashboard provider's path is a mount of the folder holding the
// dashboard, the data source is the compose Prometheus, and every panel
// queries the data source the dashboard's variable picks. Prometheus
// reads the alert rules from where compose mounts them.
func TestGrafanaProvisioned(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	grafana, ok := c.Services["grafana"]
	if !ok {
		t.Fatal("compose has no grafana service")
	}
	gm := mounts(grafana.Volumes)
	if gm["/etc/grafana/provisioning"] != "grafana/provisioning" {
		t.Errorf("grafana mounts %v: want ./grafana/provisioning at /etc/grafana/provisioning", gm)
	}

	var providers struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/quizstream.yml", &providers)
	if len(providers.Providers) != 1 || providers.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers %+v, want one of type file", providers.Providers)
	}
	dir, ok := gm[providers.Providers[0].Options.Path]
	if !ok {
		t.Fatalf("the dashboard provider reads %s, which compose does not mount (%v)", providers.Providers[0].Options.Path, gm)
	}
	if _, err := os.Stat(filepath.Join(dir, "quizstream.json")); err != nil {
		t.Errorf("the dashboard provider's folder: %v", err)
	}

	var sources struct {
		Datasources []struct {
			Type string `yaml:"type"`
			UID  string `yaml:"uid"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &sources)
	if len(sources.Datasources) != 1 || sources.Datasources[0].Type != "prometheus" {
		t.Fatalf("data sources %+v, want one Prometheus", sources.Datasources)
	}
	ds := sources.Datasources[0]
	u, err := url.Parse(ds.URL)
	if err != nil {
		t.Fatal(err)
	}
	prom, ok := c.Services[u.Hostname()]
	if !ok || !strings.HasPrefix(prom.Image, "prom/prometheus:") || u.Port() != "9090" {
		t.Errorf("the data source reaches %s: want the compose Prometheus on its port 9090", ds.URL)
	}
	if _, ok := grafana.DependsOn[u.Hostname()]; !ok {
		t.Errorf("grafana does not depend on %s", u.Hostname())
	}

	raw, err := os.ReadFile(filepath.Join(dir, "quizstream.json"))
	if err != nil {
		t.Fatal(err)
	}
	type source struct{ Type, UID string }
	var d struct {
		Templating struct {
			List []struct {
				Name, Type, Query string
				Current           struct{ Value string }
			}
		}
		Panels []struct {
			Title, Type string
			Datasource  *source
			Targets     []struct{ Datasource *source }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	variable := ""
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" && v.Current.Value == ds.UID {
			variable = "${" + v.Name + "}"
		}
	}
	if variable == "" {
		t.Fatalf("the dashboard has no Prometheus data source variable defaulting to the provisioned one (uid %s): %+v", ds.UID, d.Templating.List)
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		srcs := []*source{p.Datasource}
		for _, tg := range p.Targets {
			srcs = append(srcs, tg.Datasource)
		}
		for _, s := range srcs {
			if s == nil || s.Type != "prometheus" || s.UID != variable {
				t.Errorf("panel %q queries %+v, want Prometheus through %s", p.Title, s, variable)
			}
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}

	var promCfg struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	readYAML(t, "prometheus/prometheus.yml", &promCfg)
	pm := mounts(prom.Volumes)
	if pm["/etc/prometheus/prometheus.yml"] != "prometheus/prometheus.yml" {
		t.Errorf("prometheus mounts %v: want ./prometheus/prometheus.yml at /etc/prometheus/prometheus.yml", pm)
	}
	if len(promCfg.RuleFiles) == 0 {
		t.Error("prometheus.yml loads no rule file")
	}
	for _, f := range promCfg.RuleFiles {
		if pm[f] != "prometheus/alerts.yml" {
			t.Errorf("prometheus.yml loads %s, where compose mounts %q, not ./prometheus/alerts.yml", f, pm[f])
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
