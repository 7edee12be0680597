package natsserver_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/quizstream/quizstream/natsserver"
)

// UserSeed creates a user seed readable by its owner only, in a folder of
// its own, and returns the same identity from it ever after.
func TestUserSeed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", "dev.nk")
	pub, err := natsserver.UserSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		t.Fatalf("public key %q is not a user's", pub)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	again, err := natsserver.UserSeed(path)
	if err != nil || again != pub {
		t.Fatalf("second read: %q, %v; want %q", again, err, pub)
	}
	other, err := natsserver.UserSeed(filepath.Join(t.TempDir(), "other.nk"))
	if err != nil || other == pub {
		t.Fatalf("a new seed gave %q, %v: the same identity as another", other, err)
	}
}

// A file that holds no user seed is an error, never replaced.
func TestUserSeedRefusesOtherFiles(t *testing.T) {
	t.Parallel()
	account, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	accountSeed, err := account.Seed()
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"garbage": []byte("not a seed\n"),
		"empty":   nil,
		"account": accountSeed,
	} {
		path := filepath.Join(t.TempDir(), "seed.nk")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if pub, err := natsserver.UserSeed(path); err == nil {
			t.Errorf("%s: accepted as user %s", name, pub)
		}
		if got, _ := os.ReadFile(path); string(got) != string(content) {
			t.Errorf("%s: the file was rewritten", name)
		}
	}
}

// Authorization that NATS cannot enforce as meant is refused before the
// server starts.
func TestServerAuthRefusesAmbiguity(t *testing.T) {
	t.Parallel()
	for name, auth := range map[string]natsserver.ServerAuth{
		"token and user":        {Token: "t", User: "u", Password: "p"},
		"token and nkey":        {Token: "t", NKeys: []string{"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"}},
		"user without password": {User: "u"},
		"password without user": {Password: "p"},
		"not a user key":        {NKeys: []string{"ADXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"}},
	} {
		s, err := natsserver.StartServer(natsserver.ServerConfig{Dir: t.TempDir(), Auth: auth})
		if err == nil {
			s.Shutdown()
			s.WaitForShutdown()
			t.Errorf("%s: started", name)
		} else if !strings.Contains(err.Error(), "ServerAuth") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
