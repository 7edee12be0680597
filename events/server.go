package events

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
