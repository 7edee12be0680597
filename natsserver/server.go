// Package natsserver runs a NATS server with JetStream in the process (the
// server as a library, at the version go.mod pins): for `quizstream dev`
// and for tests.
package natsserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// ServerConfig configures an embedded NATS server with JetStream.
type ServerConfig struct {
	// Dir holds the JetStream file store. Required.
	Dir string
	// Host to listen on. Defaults to 127.0.0.1.
	Host string
	// Port to listen on; -1 picks a free one. Defaults to -1.
	Port int
	// SyncAlways makes the server fsync every write before acknowledging it,
	// which is what makes an R1 stream durable. Defaults to false: set it.
	SyncAlways bool
	// Name of the server. Defaults to one NATS picks.
	Name string
	// Cluster, when set, joins the server to a JetStream cluster.
	Cluster *ClusterConfig
	// Auth is whom the server lets in. The zero value lets in anyone who
	// reaches the port: only for tests.
	Auth ServerAuth
}

// ServerAuth lists the clients an embedded server accepts; a client
// without one of these identities is refused at connect. Each identity may
// publish and subscribe to anything (quizstream is the server's only user).
type ServerAuth struct {
	// User and Password: one user with a password.
	User, Password string
	// Token: a shared secret. NATS refuses a token alongside users.
	Token string
	// NKeys are the public keys (U...) of users that prove they hold the
	// seed by signing the server's nonce: the secret never crosses the wire.
	NKeys []string
}

// IsZero reports whether a lets in anyone.
func (a ServerAuth) IsZero() bool {
	return a.User == "" && a.Password == "" && a.Token == "" && len(a.NKeys) == 0
}

// apply sets a on the server's options.
func (a ServerAuth) apply(opts *server.Options) error {
	switch {
	case a.IsZero():
		return nil
	case a.Token != "" && (a.User != "" || len(a.NKeys) > 0):
		return errors.New("events: ServerAuth takes a token, or users and NKeys, not both")
	case (a.User == "") != (a.Password == ""):
		return errors.New("events: ServerAuth.User and Password go together")
	}
	opts.Authorization = a.Token
	if a.User != "" {
		opts.Users = []*server.User{{Username: a.User, Password: a.Password}}
	}
	for _, pub := range a.NKeys {
		if !nkeys.IsValidPublicUserKey(pub) {
			return fmt.Errorf("events: ServerAuth.NKeys: %q is not a user's public NKey", pub)
		}
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: pub})
	}
	return nil
}

// ClusterConfig joins an embedded server to a JetStream cluster.
type ClusterConfig struct {
	Name   string
	Port   int      // cluster listen port on Host
	Routes []string // nats-route://host:port of every member
}

// StartServer starts an embedded NATS server with JetStream and waits until
// it accepts connections; it returns the running server or why it did not start.
func StartServer(cfg ServerConfig) (*server.Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("events: ServerConfig.Dir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		SyncAlways: cfg.SyncAlways,
		NoSigs:     true,
		NoLog:      true,
	}
	if err := cfg.Auth.apply(opts); err != nil {
		return nil, err
	}
	if cfg.Cluster != nil {
		opts.Cluster = server.ClusterOpts{Name: cfg.Cluster.Name, Host: cfg.Host, Port: cfg.Cluster.Port}
		opts.Routes = server.RoutesFromStr(strings.Join(cfg.Cluster.Routes, ","))
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("start nats server: not ready after 30s")
	}
	return s, nil
}

// DevServer is where `quizstream dev` keeps its embedded server: the
// JetStream file store in DataDir/nats, and the NKey seed of the one user
// it lets in at SeedFile (DataDir/nats-dev.nk when empty).
type DevServer struct {
	DataDir  string
	SeedFile string
	Port     int
}

// StartDevServer starts the embedded server of `quizstream dev`: every
// write fsynced before it is acknowledged, and only the holder of the seed
// at SeedFile let in. The seed is created (readable by its owner only)
// when the file is missing, and kept: workers in other processes connect
// with NATS_NKEY_SEED_FILE set to the same file, across restarts. It
// returns the running server and the seed file's path.
func StartDevServer(cfg DevServer) (*server.Server, string, error) {
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, "", err
	}
	seedFile := cfg.SeedFile
	if seedFile == "" {
		seedFile = filepath.Join(dir, "nats-dev.nk")
	}
	pub, err := UserSeed(seedFile)
	if err != nil {
		return nil, "", err
	}
	s, err := StartServer(ServerConfig{Dir: filepath.Join(dir, "nats"), Port: cfg.Port, SyncAlways: true,
		Auth: ServerAuth{NKeys: []string{pub}}})
	if err != nil {
		return nil, "", err
	}
	return s, seedFile, nil
}

// UserSeed returns the public key of the user NKey whose seed is in path,
// first writing a new seed there (mode 0600, its folder created 0700) when
// the file does not exist.
func UserSeed(path string) (string, error) {
	seed, err := os.ReadFile(path) //nolint:gosec // G304: the path is the operator's own setting
	if errors.Is(err, fs.ErrNotExist) {
		seed, err = newUserSeed(path)
	}
	if err != nil {
		return "", fmt.Errorf("nkey seed: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(seed)
	if err != nil {
		return "", fmt.Errorf("nkey seed %s: %w", path, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("nkey seed %s: %w", path, err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("nkey seed %s: not a user's seed", path)
	}
	return pub, nil
}

// newUserSeed writes a new user seed to path, which must not exist.
func newUserSeed(path string) ([]byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	defer kp.Wipe()
	s, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	seed := append([]byte(nil), s...) // Wipe clears s
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: the operator's own path
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(append(seed, '\n')); err != nil {
		f.Close()
		return nil, err
	}
	return seed, f.Close()
}
