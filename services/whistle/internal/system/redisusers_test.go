package system_test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

func TestEachServiceRedisUserReachesItsOwnKeysAlone(t *testing.T) {
	t.Parallel()
	srv := redistest.Run(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	for _, name := range system.RedisUsers() {
		args := []any{"ACL", "SETUSER", name, "on", ">" + name + "-secret"}
		for _, r := range system.RedisUserRules(name) {
			args = append(args, r)
		}
		if err := admin.Do(t.Context(), args...).Err(); err != nil {
			t.Fatalf("ACL SETUSER %s: %v", name, err)
		}
	}
	for _, name := range system.RedisUsers() {
		t.Run(name, func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: name, Password: name + "-secret"})
			defer c.Close()
			ctx := t.Context()
			own := name + ":issue:{T3ST-0001}"
			// What every store does: documents through a script, indexes, feeds, scans.
			if err := c.Eval(ctx, "return redis.call('SET', KEYS[1], ARGV[1])", []string{own}, "doc").Err(); err != nil {
				t.Errorf("a script writing %s: %v", own, err)
			}
			if err := c.ZAdd(ctx, name+":index", redis.Z{Score: 1, Member: "x"}).Err(); err != nil {
				t.Errorf("ZADD on its own key: %v", err)
			}
			if err := c.XAdd(ctx, &redis.XAddArgs{Stream: name + ":feed:{x}", Values: []any{"k", "v"}}).Err(); err != nil {
				t.Errorf("XADD on its own key: %v", err)
			}
			if err := c.Scan(ctx, 0, name+":*", 10).Err(); err != nil {
				t.Errorf("SCAN: %v", err)
			}
			if err := c.Ping(ctx).Err(); err != nil {
				t.Errorf("PING: %v", err)
			}
			for _, other := range system.RedisUsers() {
				if other == name {
					continue
				}
				if err := c.Get(ctx, other+":layout").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
					t.Errorf("%s read %s's key: %v", name, other, err)
				}
				if err := c.Eval(ctx, "return 1", []string{other + ":issue:{T3ST-0001}"}).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
					t.Errorf("%s ran a script on %s's key: %v", name, other, err)
				}
			}
			for _, cmd := range [][]any{{"FLUSHALL"}, {"KEYS", "*"}, {"CONFIG", "GET", "*"}, {"ACL", "LIST"}} {
				if err := c.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
					t.Errorf("%s ran %v: %v", name, cmd, err)
				}
			}
		})
	}
}
