// Package redistest runs a real redis-server for a test, so that code which claims to
// work with Redis is tested against Redis and not a stand-in.
package redistest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
)

// Run starts redis-server on a free loopback port, and on a Unix socket beside its append-only
// file in t.TempDir() when the folder's path leaves room for one (see redisx.Server.URL), and
// stops it when the test ends. A missing redis-server fails the test
// with the install hint rather than skipping it, so a green run means Redis was tested.
func Run(t testing.TB) *redisx.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := redisx.StartServer(ctx, redisx.ServerOptions{Dir: t.TempDir(), AppendOnly: true})
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	return s
}

// Client connects to s and closes the client when the test ends.
func Client(t testing.TB, s *redisx.Server) redis.UniversalClient {
	t.Helper()
	return Connect(t, s.URL())
}

// FlushScripts makes every master of rdb forget its Lua scripts, as a restart, a failover or SCRIPT
// FLUSH does.
func FlushScripts(t testing.TB, rdb redis.UniversalClient) {
	t.Helper()
	if err := redisx.ForEachMaster(context.Background(), rdb, func(ctx context.Context, server *redis.Client) error {
		return server.ScriptFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
}

// Connect connects to the Redis or the Redis Cluster a URL names, as the system does
// (redisx.Connect), and closes the client when the test ends.
func Connect(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	c, err := redisx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Keys lists every key of the Redis that c talks to, each master's of a cluster, sorted.
func Keys(ctx context.Context, c redis.UniversalClient, pattern string) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	err := redisx.ForEachMaster(ctx, c, func(ctx context.Context, server *redis.Client) error {
		ks, err := server.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, ks...)
		mu.Unlock()
		return err
	})
	slices.Sort(keys)
	return keys, err
}

// FlushAll deletes every key of the Redis that c talks to, on every master of a cluster.
func FlushAll(ctx context.Context, c redis.UniversalClient) error {
	return redisx.ForEachMaster(ctx, c, func(ctx context.Context, server *redis.Client) error {
		return server.FlushAll(ctx).Err()
	})
}

// Dump renders every key in the Redis that c talks to (every master's of a cluster), with its
// type and contents, sorted, so that two stores holding the same data render alike: strings as
// they are, hashes and sets by field or member, sorted sets by member with their scores, lists
// in order, and streams by their entries' fields, sorted and without ids: an id is the time of
// the append, and entries of different issues may be appended in either order, but an entry
// appended twice shows twice. Strings show as Value renders them.
func Dump(ctx context.Context, c redis.UniversalClient) (string, error) {
	keys, err := Keys(ctx, c, "*")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, k := range keys {
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			return "", err
		}
		var lines []string
		switch typ {
		case "string":
			v, err := c.Get(ctx, k).Result()
			if err != nil {
				return "", err
			}
			lines = []string{Value(k, v)}
		case "hash":
			m, err := c.HGetAll(ctx, k).Result()
			if err != nil {
				return "", err
			}
			for f, v := range m {
				lines = append(lines, f+" = "+v)
			}
		case "set":
			if lines, err = c.SMembers(ctx, k).Result(); err != nil {
				return "", err
			}
		case "zset":
			zs, err := c.ZRangeWithScores(ctx, k, 0, -1).Result()
			if err != nil {
				return "", err
			}
			for _, z := range zs {
				lines = append(lines, fmt.Sprintf("%v @ %v", z.Member, z.Score))
			}
		case "list":
			if lines, err = c.LRange(ctx, k, 0, -1).Result(); err != nil {
				return "", err
			}
		case "stream":
			ms, err := c.XRange(ctx, k, "-", "+").Result()
			if err != nil {
				return "", err
			}
			for _, m := range ms {
				lines = append(lines, streamEntry(m))
			}
		default:
			lines = []string{"(" + typ + ")"}
		}
		if typ != "list" {
			slices.Sort(lines)
		}
		fmt.Fprintf(&b, "%s (%s)\n", k, typ)
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String(), nil
}

// Value renders a string key's value as Dump does: a projection's sequence key without the count
// of rewrites at its sequence ("17/1" reads 17), which says how often another writer refused one
// there (redisdoc), not what the view holds; another run of the same history need not meet them.
func Value(key, v string) string {
	if strings.Contains(key, ":seq:{") {
		v, _, _ = strings.Cut(v, "/")
	}
	return v
}

// streamEntry renders a stream entry's fields in the order of their names.
func streamEntry(m redis.XMessage) string {
	names := make([]string, 0, len(m.Values))
	for f := range m.Values {
		names = append(names, f)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, f := range names {
		parts[i] = fmt.Sprintf("%s=%v", f, m.Values[f])
	}
	return strings.Join(parts, " ")
}
