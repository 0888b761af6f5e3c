package redisx_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

func TestConnectGivesAClusterClientForAURLWithAddrParameters(t *testing.T) {
	t.Parallel()
	cluster := redistest.RunCluster(t)
	if !redisx.IsClusterURL(cluster.URL()) || redisx.IsClusterURL(cluster.Servers[0].URL()) {
		t.Fatalf("IsClusterURL(%s) and IsClusterURL(%s) read the wrong way", cluster.URL(), cluster.Servers[0].URL())
	}
	c, err := redisx.Connect(t.Context(), cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("Connect(%s) made a %T, want a cluster client", cluster.URL(), c)
	}
	// A one-node seed list is the first address repeated; the client finds the other masters.
	one, err := redisx.Connect(t.Context(), cluster.Servers[0].URL()+"?addr="+cluster.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	for i := range 20 {
		if err := one.Set(t.Context(), fmt.Sprintf("k:{%d}", i), i, 0).Err(); err != nil {
			t.Fatalf("a client seeded with one node cannot write every slot: %v", err)
		}
	}
}

func TestConnectRefusesAClusterNodeNamedAsOneServer(t *testing.T) {
	t.Parallel()
	cluster := redistest.RunCluster(t)
	_, err := redisx.Connect(t.Context(), cluster.Servers[1].URL())
	if err == nil || !strings.Contains(err.Error(), "addr=") {
		t.Fatalf("Connect(%s) = %v, want a refusal naming the cluster form", cluster.Servers[1].URL(), err)
	}
	plain := redistest.Run(t)
	_, err = redisx.Connect(t.Context(), plain.TCPURL()+"?addr="+plain.Addr())
	if err == nil || !strings.Contains(err.Error(), "cluster support disabled") {
		t.Fatalf("Connect with a cluster URL of a server that is no cluster node = %v, want the server's refusal", err)
	}
}

func TestDeletePrefixDeletesTheKeysOfEveryMaster(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"one server", func(t *testing.T) string { return redistest.Run(t).URL() }},
		{"a cluster", func(t *testing.T) string { return redistest.RunCluster(t).URL() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			c := redistest.Connect(t, tc.url(t))
			var kept []string
			// More keys than one batch, in slots all over the cluster.
			for i := range 2500 {
				if err := c.Set(ctx, fmt.Sprintf("gone:{%d}", i), i, 0).Err(); err != nil {
					t.Fatal(err)
				}
				if i%500 == 0 {
					k := fmt.Sprintf("kept:{%d}", i)
					kept = append(kept, k)
					if err := c.Set(ctx, k, i, 0).Err(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := redisx.DeletePrefix(ctx, c, "gone:"); err != nil {
				t.Fatal(err)
			}
			slices.Sort(kept)
			if got, err := redistest.Keys(ctx, c, "*"); err != nil || !slices.Equal(got, kept) {
				t.Errorf("after DeletePrefix the keys are %v, %v; want %v", got, err, kept)
			}
		})
	}
}

// tally counts round trips by kind.
type tally struct {
	mu                  sync.Mutex
	commands, pipelines int
}

func (n *tally) count(_ context.Context, pipeline bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if pipeline {
		n.pipelines++
	} else {
		n.commands++
	}
}

func (n *tally) take() (commands, pipelines int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	commands, pipelines, n.commands, n.pipelines = n.commands, n.pipelines, 0, 0
	return commands, pipelines
}

func TestOnAClusterEachMasterAPipelineReachesCountsOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cluster := redistest.RunCluster(t)
	opts, err := redis.ParseClusterURL(cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClusterClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	var n tally
	redisx.CountTrips(c, n.count)
	// Warm up: the client reads the slots and the commands' key positions, and opens connections
	// to every master, requests that count too; after it, each step counts only its own.
	if err := c.Get(ctx, "warm").Err(); err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if err := m.Ping(ctx).Err(); err != nil {
			return err
		}
		_, err := m.Pipelined(ctx, func(p redis.Pipeliner) error { return p.Ping(ctx).Err() })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if c, p := n.take(); c+p < 2*redistest.ClusterMasters+1 {
		t.Fatalf("warming up three masters counted %d commands and %d pipelines; every request counts", c, p)
	}
	// Keys on every master: hash tags 0 to 29 fall on all three.
	everywhere := func(p redis.Pipeliner) error {
		for i := range 30 {
			p.Incr(ctx, fmt.Sprintf("n:{%d}", i))
		}
		return nil
	}
	steps := []struct {
		name                string
		do                  func() error
		commands, pipelines int
	}{
		{"one command", func() error { return c.Set(ctx, "k", "v", 0).Err() }, 1, 0},
		{"a pipeline on one slot", func() error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "n:{a}")
				p.Incr(ctx, "m:{a}")
				return nil
			})
			return err
		}, 0, 1},
		{"a pipeline over every master", func() error { _, err := c.Pipelined(ctx, everywhere); return err }, 0, redistest.ClusterMasters},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if c, p := n.take(); c != s.commands || p != s.pipelines {
			t.Errorf("%s counted %d commands and %d pipelines, want %d and %d", s.name, c, p, s.commands, s.pipelines)
		}
	}
}

func TestAClusterClientWritesToThePromotedReplicaWithinSecondsOfItsMastersDeath(t *testing.T) {
	t.Parallel()
	cluster := redistest.RunClusterWithReplicas(t)
	c, err := redisx.Connect(t.Context(), cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A key in the first master's slots (the first third), written once before it dies.
	key := ""
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("failover:%d", i)
		slot, err := c.ClusterKeySlot(t.Context(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if slot < 16384/redistest.ClusterMasters {
			key = k
		}
	}
	if err := c.Set(t.Context(), key, "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(cluster.Servers[0].PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	died := time.Now()
	// The replica takes over about a second after the node timeout; go-redis's own layout
	// refresh would come only once its layout is a minute old.
	wait.For(t, 4*redistest.ReplicaNodeTimeout+5*time.Second, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		return c.Set(ctx, key, "after", 0).Err()
	})
	t.Logf("written again %s after the master died", time.Since(died).Round(time.Millisecond))
	promoted := redis.NewClient(&redis.Options{Addr: cluster.Replicas[0].Addr()})
	defer promoted.Close()
	if got, err := promoted.Get(t.Context(), key).Result(); err != nil || got != "after" {
		t.Errorf("the promoted replica holds %q (%v), want the write made after the failover", got, err)
	}
}
