// Package natstest runs real NATS JetStream servers inside a test process: one server,
// a restartable one, or a cluster. Nothing stands in for NATS, so what passes here
// passes against the real thing.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/netx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

// started remembers the options each server was started with, so that RestartServer
// can bring it back on the same store and port.
var started sync.Map // *server.Server -> natsx.EmbeddedOptions

// RunServer starts a JetStream server on a random port with its store in t.TempDir()
// and shuts it down when the test ends.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return start(t, natsx.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1})
}

// start starts a server with opts and registers its shutdown with the test.
func start(t testing.TB, opts natsx.EmbeddedOptions) *server.Server {
	t.Helper()
	s, err := natsx.StartEmbedded(opts)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	started.Store(s, opts)
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
		started.Delete(s)
	})
	return s
}

// Connect connects to s and closes the connection when the test ends.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, s.ClientURL(), t.Name())
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// RestartServer shuts s down and starts a new server on the same store directory and
// client port, as a crash and restart would; s must come from this package. Clients
// made with Connect reconnect to the new server by themselves.
func RestartServer(t testing.TB, s *server.Server) *server.Server {
	t.Helper()
	v, ok := started.Load(s)
	if !ok {
		t.Fatalf("natstest: RestartServer needs a server started by natstest")
	}
	opts := v.(natsx.EmbeddedOptions)
	opts.Port = s.Addr().(*net.TCPAddr).Port
	if opts.Cluster != nil {
		c := *opts.Cluster
		c.Port = s.ClusterAddr().Port
		opts.Cluster = &c
	}
	if opts.ServerName == "" {
		opts.ServerName = s.Name() // JetStream state belongs to the server's identity
	}
	s.Shutdown()
	s.WaitForShutdown()
	started.Delete(s)
	return start(t, opts)
}

// RunCluster starts an n-node JetStream cluster on loopback, each node with its own
// t.TempDir(), returns once the cluster has elected a meta leader, and shuts every node
// down when the test ends. n must be at least 2; use 3 to survive the loss of a node.
func RunCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	if n < 2 {
		t.Fatalf("natstest: RunCluster needs at least 2 nodes, got %d", n)
	}
	// JetStream sizes its meta group from the route list, so every node must know every
	// route before it starts; reserve the route ports first.
	ports, err := netx.FreePorts(n)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = "nats://127.0.0.1:" + strconv.Itoa(p)
	}
	const name = "natstest"
	servers := make([]*server.Server, n)
	for i := range servers {
		servers[i] = start(t, natsx.EmbeddedOptions{
			StoreDir:   filepath.Join(t.TempDir(), "js"),
			Port:       -1,
			ServerName: fmt.Sprintf("%s-n%d", name, i+1),
			Cluster:    &natsx.ClusterOptions{Name: name, Port: ports[i], Routes: routes},
		})
	}
	WaitForMetaLeader(t, servers)
	return servers
}

// WaitForMetaLeader waits until one of the running servers leads the JetStream meta
// group, every running server knows it, and the leader has heard from each of them, so that
// stream operations can proceed: the leader places a stream's replicas only on servers whose
// statistics it has received, and refuses a stream of as many replicas as servers until then.
func WaitForMetaLeader(t testing.TB, servers []*server.Server) {
	t.Helper()
	wait.For(t, 20*time.Second, 25*time.Millisecond, func() error {
		var leader *server.Server
		running := 0
		for _, s := range servers {
			if !s.Running() {
				continue
			}
			running++
			if !s.JetStreamIsCurrent() {
				return fmt.Errorf("%s is not current with the meta group", s.Name())
			}
			if s.JetStreamIsLeader() {
				leader = s
			}
		}
		if leader == nil {
			return errors.New("no meta leader elected")
		}
		if ready := len(leader.JetStreamClusterPeers()); ready < running {
			return fmt.Errorf("the meta leader %s can place replicas on %d of the %d running servers", leader.Name(), ready, running)
		}
		return nil
	})
}
