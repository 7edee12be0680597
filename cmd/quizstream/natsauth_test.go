package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// Every command that connects to NATS takes its credentials.
func TestNATSCredentialFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"api"}, {"worker"}, {"dev"}, {"seed"}, {"dlq", "list"}, {"replay"}} {
		var stderr bytes.Buffer
		err := run(context.Background(), append(args, "-h"), func(string) string { return "" }, &bytes.Buffer{}, &stderr)
		if err == nil {
			t.Errorf("%v -h: no error", args)
		}
		for _, env := range []string{"NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS", "NATS_NKEY_SEED_FILE"} {
			if !strings.Contains(stderr.String(), "($"+env+")") {
				t.Errorf("%v does not take $%s", args, env)
			}
		}
	}
}

// The logged configuration never shows a NATS password or token, whether
// it comes in its own variable or in the URL.
func TestNATSSecretsRedacted(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"NATS_URL":      "nats://urltoken@127.0.0.1:4222,nats://u:urlpass@127.0.0.1:4223",
		"NATS_USER":     "qs",
		"NATS_PASSWORD": "varpass",
		"NATS_TOKEN":    "vartoken",
	}
	var c config
	f := newFlags("api", func(k string) string { return env[k] }, &bytes.Buffer{})
	f.nats(&c, true)
	if err := f.parse(nil); err != nil {
		t.Fatal(err)
	}
	if a := c.NATSAuth; a.User != "qs" || a.Password != "varpass" || a.Token != "vartoken" {
		t.Fatalf("auth = %+v", a)
	}
	var out bytes.Buffer
	f.logConfig(slog.New(slog.NewTextHandler(&out, nil)), "api")
	for _, secret := range []string{"urltoken", "urlpass", "varpass", "vartoken"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("logged %q: %s", secret, out.String())
		}
	}
	for _, shown := range []string{"nats_user=qs", "nats_password=REDACTED", "127.0.0.1:4223"} {
		if !strings.Contains(out.String(), shown) {
			t.Errorf("did not log %q: %s", shown, out.String())
		}
	}
}
