// Package deploy reads the deployment kit in this folder (compose.yaml,
// the NATS configuration, the Kubernetes manifests) so that its tests can
// hold the kit against the binary's settings and cmd/deploycheck can run
// the process set compose.yaml describes without a container engine.
package deploy

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Compose is the part of a compose file this package reads.
type Compose struct {
	Services map[string]Service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

// Service is one compose service.
type Service struct {
	Image           string            `yaml:"image"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	DependsOn       DependsOn         `yaml:"depends_on"`
	Profiles        []string          `yaml:"profiles"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Healthcheck     *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// DependsOn maps a service to the condition it waits for; the short form
// (a list of names) means service_started.
type DependsOn map[string]string

// UnmarshalYAML reads both forms of depends_on.
func (d *DependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = DependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, s := range names {
			(*d)[s] = "service_started"
		}
		return nil
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for s, c := range m {
			if c.Condition == "" {
				c.Condition = "service_started"
			}
			(*d)[s] = c.Condition
		}
		return nil
	}
	return fmt.Errorf("depends_on: a list or a mapping, not %v", n.Tag)
}

// Quizstream reports whether the service runs the quizstream image.
func (s Service) Quizstream() bool { return strings.HasPrefix(s.Image, "quizstream:") }

// LoadCompose reads the compose file at path, interpolating ${VAR},
// ${VAR:-default} and ${VAR:?message} from env as compose does; it
// returns an error for a variable required and unset, or a file that does
// not parse.
func LoadCompose(path string, env func(string) (string, bool)) (*Compose, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text, err := Interpolate(string(raw), env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var c Compose
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

var varRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// Interpolate replaces compose's variable references in s.
func Interpolate(s string, env func(string) (string, bool)) (string, error) {
	var errs []error
	out := varRef.ReplaceAllStringFunc(s, func(ref string) string {
		if ref == "$$" {
			return "$"
		}
		m := varRef.FindStringSubmatch(ref)
		name, op, arg := m[1], m[2], m[3]
		v, set := env(name)
		empty := !set || (strings.HasPrefix(op, ":") && v == "")
		switch strings.TrimPrefix(op, ":") {
		case "-":
			if empty {
				return arg
			}
		case "?":
			if empty {
				errs = append(errs, fmt.Errorf("%s: %s", name, arg))
			}
		}
		return v
	})
	return out, errors.Join(errs...)
}

// EnvFile reads a KEY=value file (deploy/.env.example), skipping comments.
func EnvFile(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: not KEY=value: %q", path, line)
		}
		env[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return env, nil
}

// Role returns the quizstream command a container runs, from its arguments:
// "api", "worker", "migrate", "seed", "stream apply" and so on.
func Role(args []string) string {
	if len(args) >= 2 && (args[0] == "stream" || args[0] == "dlq") {
		return args[0] + " " + args[1]
	}
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

var helpEnv = regexp.MustCompile(`\$([A-Z][A-Z0-9_]+)`)

// Settings returns the environment variables `quizstream <role>` reads,
// as its own -h lists them (the binary at bin); it returns an error when
// the help names none.
func Settings(bin, role string) (map[string]bool, error) {
	args := append(strings.Fields(role), "-h")
	out, _ := exec.Command(bin, args...).CombinedOutput() // -h exits 1
	names := map[string]bool{}
	for _, m := range helpEnv.FindAllStringSubmatch(string(out), -1) {
		names[m[1]] = true
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("quizstream %s -h names no $VARIABLE:\n%s", role, out)
	}
	return names, nil
}

// Unknown returns the names of env that are not in settings, sorted.
func Unknown(env []string, settings map[string]bool) []string {
	var out []string
	for _, k := range env {
		if !settings[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Root returns the module's root folder, found upwards from dir.
func Root(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}
