package redisx

import (
	"context"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// trips is a tripCounter's tally, by kind.
type trips struct {
	mu                  sync.Mutex
	commands, pipelines int
}

func (c *trips) count(_ context.Context, pipeline bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pipeline {
		c.pipelines++
	} else {
		c.commands++
	}
}

func (c *trips) take() (commands, pipelines int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	commands, pipelines, c.commands, c.pipelines = c.commands, c.pipelines, 0, 0
	return commands, pipelines
}

func TestTheRoundTripHookCountsACommandOrAPipelineAsOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, err := StartServer(ctx, ServerOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	// The client's connections (go-redis keeps pipelines on connections of their own) are opened
	// before the steps, so that no handshake lands in a step's count; the handshakes count too.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	var n trips
	rdb.AddHook(tripCounter{count: n.count})
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { return p.Ping(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	if c, p := n.take(); c+p <= 2 {
		t.Errorf("a PING and a pipelined PING on new connections counted %d commands and %d pipelines; their handshakes must count too", c, p)
	}

	steps := []struct {
		name                string
		do                  func() error
		commands, pipelines int
	}{
		{"one command", func() error { return rdb.Set(ctx, "k", "v", 0).Err() }, 1, 0},
		{"a pipeline of five commands", func() error {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for range 5 {
					p.Incr(ctx, "n")
				}
				return nil
			})
			return err
		}, 0, 1},
		{"a MULTI/EXEC transaction", func() error {
			_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "n")
				p.Incr(ctx, "m")
				return nil
			})
			return err
		}, 0, 1},
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
