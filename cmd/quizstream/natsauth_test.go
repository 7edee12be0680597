package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// Every command that connects to NATS takes its credentials, from flags
// or variables.
func TestNATSCredentialFlags(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"api", "worker", "dev", "seed", "dlq", "replay", "stream"} {
		f := flagsOf(t, name, &config{})
		for _, env := range []string{"NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS", "NATS_NKEY_SEED_FILE"} {
			if flag := strings.ToLower(strings.ReplaceAll(env, "_", "-")); f.fs.Lookup(flag) == nil || !f.env[flag] {
				t.Errorf("%s does not take $%s", name, env)
			}
		}
	}
}

// The logged configuration never shows a NATS password or token, whether
// it comes in its own setting or in the URL.
func TestNATSSecretsRedacted(t *testing.T) {
	t.Parallel()
	var c config
	f := flagsOf(t, "api", &c)
	if err := f.parse([]string{"--nats-url", "nats://urltoken@127.0.0.1:4222,nats://u:urlpass@127.0.0.1:4223",
		"--nats-user", "qs", "--nats-password", "varpass", "--nats-token", "vartoken"}); err != nil {
		t.Fatal(err)
	}
	if a := c.NATSAuth; a.User != "qs" || a.Password != "varpass" || a.Token != "vartoken" {
		t.Fatalf("auth = %+v", a)
	}
	var out bytes.Buffer
	f.logConfig(slog.New(slog.NewJSONHandler(&out, nil)), "api")
	var logged map[string]any
	if err := json.Unmarshal(out.Bytes(), &logged); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"urltoken", "urlpass", "varpass", "vartoken"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("logged %q: %s", secret, out.String())
		}
	}
	if logged["nats_user"] != "qs" || logged["nats_password"] != "REDACTED" || logged["nats_token"] != "REDACTED" ||
		logged["nats_url"] != "nats://REDACTED@127.0.0.1:4222,nats://u:REDACTED@127.0.0.1:4223" || logged["body_limit"] != "65536" {
		t.Errorf("logged %v", logged)
	}
}
