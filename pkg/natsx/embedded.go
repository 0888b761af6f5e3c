// Package natsx starts an embedded NATS JetStream server and connects to NATS with
// the options every Whistle process wants, so that `whistle up`, the services and the
// tests all reach NATS the same way.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds how long StartEmbedded waits for the server to accept clients,
// so a server that cannot start fails the caller instead of hanging it.
const readyTimeout = 10 * time.Second

// EmbeddedOptions describes an in-process NATS server with JetStream on file storage.
type EmbeddedOptions struct {
	// StoreDir is where JetStream keeps its files; it is required because the stream
	// is the system of record and must not land in a shared temporary folder by accident.
	StoreDir string
	// Host is the client listen address; empty means 127.0.0.1 so that an embedded
	// server is not exposed beyond the machine unless asked.
	Host string
	// Port is the client port; -1 picks a random free port and 0 the NATS default 4222.
	Port int
	// ServerName names the server in logs and in the JetStream cluster; empty lets NATS
	// choose one.
	ServerName string
	// Cluster, when set, joins the server to a JetStream cluster; nil runs it alone.
	Cluster *ClusterOptions
	// Sync is how often JetStream flushes its files to disk; the zero value keeps the
	// server's default.
	Sync Sync
	// Users, when set, are the only ones allowed to connect, each with its permissions; a
	// client without a user's credentials is refused. Empty lets anyone connect.
	Users []User
}

// ClusterOptions joins an embedded server to a JetStream cluster through routes.
type ClusterOptions struct {
	// Name is the cluster name, which JetStream clustering requires to be fixed.
	Name string
	// Host is the route listen address; empty means 127.0.0.1.
	Host string
	// Port is the route listen port; -1 picks a random free port.
	Port int
	// Routes are the route URLs of every member (nats://host:port), this server
	// included; JetStream counts them to size its meta group, so list them all.
	Routes []string
}

// StartEmbedded starts a NATS server with JetStream in this process and returns it once
// it accepts clients. It logs nothing, since the server's log would drown the service's
// own; it never panics, and on failure the server is shut down before the error returns.
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("natsx: EmbeddedOptions.StoreDir is required for JetStream file storage")
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	sopts := &server.Options{
		ServerName: opts.ServerName,
		Host:       host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoLog:      true,
		NoSigs:     true,
	}
	for _, u := range opts.Users {
		sopts.Users = append(sopts.Users, u.ServerUser())
	}
	if opts.Sync.Always {
		// As the server's own `sync_interval: always` sets it: the interval still runs, as a backstop.
		sopts.SyncAlways = true
	} else if opts.Sync.Interval > 0 {
		sopts.SyncInterval = opts.Sync.Interval
	}
	if c := opts.Cluster; c != nil {
		if c.Name == "" {
			return nil, errors.New("natsx: ClusterOptions.Name is required for a JetStream cluster")
		}
		sopts.Cluster.Name = c.Name
		sopts.Cluster.Host = c.Host
		if sopts.Cluster.Host == "" {
			sopts.Cluster.Host = "127.0.0.1"
		}
		sopts.Cluster.Port = c.Port
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("natsx: route %q: %w", r, err)
			}
			sopts.Routes = append(sopts.Routes, u)
		}
	}
	s, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("natsx: configure embedded server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("natsx: embedded server on %s:%d not ready within %s", host, opts.Port, readyTimeout)
	}
	return s, nil
}

// Connect connects to NATS under the given client name and keeps reconnecting forever,
// because a service that gives up on NATS can do nothing useful; opts are applied after
// the defaults and may override them. A deadline on ctx bounds the first connection.
func Connect(ctx context.Context, url string, name string, opts ...nats.Option) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsx: connect to %s: %w", redact(url), err)
	}
	all := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.PingInterval(20 * time.Second),
	}
	if dl, ok := ctx.Deadline(); ok {
		all = append(all, nats.Timeout(time.Until(dl)))
	}
	all = append(all, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("natsx: connect to %s as %q: %w", redact(url), name, err)
	}
	return nc, nil
}

// redact masks passwords in a comma-separated list of NATS URLs so that errors can
// name the server without leaking credentials into logs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		} else {
			parts[i] = "<unparseable URL>"
		}
	}
	return strings.Join(parts, ",")
}
