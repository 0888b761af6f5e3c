package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
)

// ClusterMasters is how many masters RunCluster starts.
const ClusterMasters = 3

// clusterSlots is how many hash slots a Redis Cluster has.
const clusterSlots = 16384

// Cluster is a Redis Cluster of redis-server children, each a master of an equal share of the
// slots, with no replicas unless RunClusterWithReplicas started it.
type Cluster struct {
	Servers []*redisx.Server
	// Replicas, when the cluster has them, are the masters' replicas: Replicas[i] follows
	// Servers[i] and takes its place when it dies.
	Replicas []*redisx.Server
}

// ReplicaNodeTimeout is the cluster node timeout of a cluster RunClusterWithReplicas starts: how
// long a master may be unreachable before its replica is promoted.
const ReplicaNodeTimeout = time.Second

// URL names the cluster as Whistle's configuration does (see redisx.Connect): the first master's
// address, and the others' as addr parameters.
func (c *Cluster) URL() string {
	u := c.Servers[0].TCPURL()
	for i, s := range c.Servers[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + s.Addr()
	}
	return u
}

// RunCluster starts a Redis Cluster of ClusterMasters masters for the test: one redis-server
// child per master with cluster-enabled on a free loopback port and its files in t.TempDir(),
// the slots spread among them with CLUSTER ADDSLOTSRANGE, introduced to each other with CLUSTER
// MEET, and returns once every node reports cluster_state:ok, so that a client sees the whole
// cluster from any node. The servers stop when the test ends.
func RunCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster(t, false)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return c
}

// RunClusterWithReplicas is RunCluster with a replica behind each master, so that a master can
// fail over: the nodes count a node failed after ReplicaNodeTimeout, and no child that dies is
// restarted, so that a test can kill a master (syscall.Kill of its PID) and see its replica take
// over. It returns once every replica has caught up with its master.
func RunClusterWithReplicas(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster(t, true)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return c
}

// owner is what a cluster needs of the test it lives as long as: only methods that any
// goroutine may call, so that a pool may start a cluster for its owner while a subtest runs.
type owner interface {
	TempDir() string
	Cleanup(func())
	Errorf(format string, args ...any)
}

// startCluster starts a cluster that stops when its owner ends (see RunCluster), with replicas
// when asked (see RunClusterWithReplicas).
func startCluster(o owner, replicas bool) (*Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &Cluster{}
	var admins []*redis.Client
	defer func() {
		for _, a := range admins {
			_ = a.Close()
		}
	}()
	nodes := ClusterMasters
	opts := redisx.ServerOptions{AppendOnly: true, Cluster: true}
	if replicas {
		nodes = 2 * ClusterMasters
		opts.ClusterNodeTimeout, opts.MaxRestarts = ReplicaNodeTimeout, -1
	}
	var all []*redisx.Server
	for i := range nodes {
		opts.Dir = o.TempDir()
		s, err := redisx.StartServer(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("cluster node %d: %w", i, err)
		}
		o.Cleanup(func() {
			// A node a test killed on purpose has exited with a signal: that is no failure.
			if err := s.Stop(); err != nil && !strings.Contains(err.Error(), "signal: killed") {
				o.Errorf("redistest: %v", err)
			}
		})
		all = append(all, s)
		// A plain client of the node alone, for the commands that configure it.
		admins = append(admins, redis.NewClient(&redis.Options{Addr: s.Addr()}))
	}
	c.Servers, c.Replicas = all[:ClusterMasters], all[ClusterMasters:]
	for i, admin := range admins[:ClusterMasters] {
		first, last := i*clusterSlots/ClusterMasters, (i+1)*clusterSlots/ClusterMasters-1
		if err := admin.ClusterAddSlotsRange(ctx, first, last).Err(); err != nil {
			return nil, fmt.Errorf("give slots %d-%d to %s: %w", first, last, c.Servers[i].Addr(), err)
		}
	}
	for _, s := range all[1:] {
		host, port, err := net.SplitHostPort(s.Addr())
		if err != nil {
			return nil, err
		}
		if err := admins[0].Do(ctx, "CLUSTER", "MEET", host, port, s.ClusterBusPort()).Err(); err != nil {
			return nil, fmt.Errorf("introduce %s to %s: %w", s.Addr(), c.Servers[0].Addr(), err)
		}
	}
	for i, replica := range admins[ClusterMasters:] {
		id, err := admins[i].ClusterMyID(ctx).Result()
		if err != nil {
			return nil, err
		}
		// A node can follow a master only once it has heard of it through the cluster bus.
		for {
			err := replica.ClusterReplicate(ctx, id).Err()
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("make %s a replica of %s: %w", c.Replicas[i].Addr(), c.Servers[i].Addr(), err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	// A new master waits about two seconds after it starts before it calls its cluster ok.
	for {
		err := func() error {
			for i, admin := range admins {
				if err := clusterOK(ctx, admin, len(admins)); err != nil {
					return fmt.Errorf("node %s: %w", all[i].Addr(), err)
				}
				if i < ClusterMasters {
					continue
				}
				repl, err := admin.Info(ctx, "replication").Result()
				if err != nil {
					return err
				}
				if !strings.Contains(repl, "master_link_status:up") {
					return fmt.Errorf("replica %s has not caught up with its master", all[i].Addr())
				}
			}
			return nil
		}()
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the cluster did not form: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// clusterOK reports whether a node sees the whole cluster: every node, and every slot served.
func clusterOK(ctx context.Context, node *redis.Client, nodes int) error {
	info, err := node.ClusterInfo(ctx).Result()
	if err != nil {
		return err
	}
	fields := map[string]string{}
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	if fields["cluster_state"] != "ok" {
		return fmt.Errorf("cluster_state:%s", fields["cluster_state"])
	}
	if n, _ := strconv.Atoi(fields["cluster_known_nodes"]); n != nodes {
		return fmt.Errorf("knows %s nodes, want %d", fields["cluster_known_nodes"], nodes)
	}
	if fields["cluster_slots_ok"] != strconv.Itoa(clusterSlots) {
		return errors.New("not every slot is served: cluster_slots_ok:" + fields["cluster_slots_ok"])
	}
	return nil
}

// ClusterClient connects to c as the system does and closes the client when the test ends.
func ClusterClient(t testing.TB, c *Cluster) redis.UniversalClient {
	t.Helper()
	return Connect(t, c.URL())
}

// ClusterPool lends clusters to tests that each need one of their own for a while, such as the
// parallel subtests of a suite: a cluster a test gives back is flushed and lent again, so a
// suite starts only as many clusters as it runs subtests at once, not one per subtest (a cluster
// takes seconds to form). The clusters stop when the pool's owner ends.
type ClusterPool struct {
	owner owner
	mu    sync.Mutex
	free  []*Cluster
}

// NewClusterPool returns a pool whose clusters live until t ends; give it the test whose
// subtests take clusters from it.
func NewClusterPool(t testing.TB) *ClusterPool { return &ClusterPool{owner: t} }

// Take lends t a cluster that holds no keys, and takes it back when t ends.
func (p *ClusterPool) Take(t testing.TB) *Cluster {
	t.Helper()
	p.mu.Lock()
	var c *Cluster
	if n := len(p.free); n > 0 {
		c, p.free = p.free[n-1], p.free[:n-1]
	}
	p.mu.Unlock()
	if c == nil {
		var err error
		if c, err = startCluster(p.owner, false); err != nil {
			t.Fatalf("redistest: %v", err)
		}
	}
	t.Cleanup(func() {
		// Through a client of the pool's own: the test's clients may be closed by now.
		rdb, err := redisx.Connect(context.Background(), c.URL())
		if err == nil {
			err = FlushAll(context.Background(), rdb)
			_ = rdb.Close()
		}
		if err != nil {
			t.Logf("redistest: a cluster could not be flushed, so it is not lent again: %v", err)
			return
		}
		p.mu.Lock()
		p.free = append(p.free, c)
		p.mu.Unlock()
	})
	return c
}
