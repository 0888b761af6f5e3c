package redisx

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Script is a Lua script that runs by its digest (EVALSHA), so that Redis is neither sent its body
// nor hashes it at every call. Redis forgets its scripts when it restarts, when a replica takes
// over from its master, and on SCRIPT FLUSH, and then answers NOSCRIPT: execute the pipelines
// that run scripts with Exec, which loads them again and runs the pipeline once more.
type Script struct {
	src, sha string
}

// scripts are every Script made, which Exec loads when Redis has lost them.
var scripts struct {
	mu  sync.Mutex
	all []*Script
}

// NewScript makes a Script of a Lua source. Make scripts once, as package variables: Exec loads
// every script made, whichever pipeline lost its own.
func NewScript(src string) *Script {
	sum := sha1.Sum([]byte(src))
	s := &Script{src: src, sha: hex.EncodeToString(sum[:])}
	scripts.mu.Lock()
	scripts.all = append(scripts.all, s)
	scripts.mu.Unlock()
	return s
}

// EvalSha runs the script by its digest on c, or queues it there when c is a pipeline.
func (s *Script) EvalSha(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd {
	return c.EvalSha(ctx, s.sha, keys, args...)
}

// Exec executes pipe, a pipeline (not a transaction) of rdb. Redis answers NOSCRIPT to a script
// it no longer holds and runs the pipeline's other commands; Exec then loads every Script
// (LoadScripts) and runs once more, in order, only the commands it refused: nothing in pipe runs
// twice. A second NOSCRIPT (the scripts lost again in between) is returned like any error, as is
// any other command's failure, and then nothing is run again.
func Exec(ctx context.Context, rdb redis.UniversalClient, pipe redis.Pipeliner) ([]redis.Cmder, error) {
	cmds, err := pipe.Exec(ctx)
	var refused []redis.Cmder
	for _, c := range cmds {
		switch e := c.Err(); {
		case IsNoScript(e):
			refused = append(refused, c)
		case e != nil && !errors.Is(e, redis.Nil):
			return cmds, err
		}
	}
	if len(refused) == 0 {
		return cmds, err
	}
	if err := LoadScripts(ctx, rdb); err != nil {
		return cmds, err
	}
	again := rdb.Pipeline()
	if err := again.BatchProcess(ctx, refused...); err != nil {
		return cmds, err
	}
	if _, err := again.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return cmds, err
	}
	return cmds, firstErr(cmds)
}

// firstErr is the first failure among cmds, as a pipeline's Exec reports it.
func firstErr(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// IsNoScript reports whether err is Redis's answer to the digest of a script it does not hold.
func IsNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }

// LoadScripts loads every Script on the server, or on each master of a cluster: the masters run
// the writes, and go-redis's ClusterClient.ScriptLoad, which loads on the replicas too, fails
// while any node is down, as one is after a failover.
func LoadScripts(ctx context.Context, rdb redis.UniversalClient) error {
	scripts.mu.Lock()
	all := slices.Clone(scripts.all)
	scripts.mu.Unlock()
	return ForEachMaster(ctx, rdb, func(ctx context.Context, server *redis.Client) error {
		pipe := server.Pipeline()
		for _, s := range all {
			pipe.ScriptLoad(ctx, s.src)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("redisx: load %d scripts on %s: %w", len(all), server.Options().Addr, err)
		}
		return nil
	})
}
