package redisx_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
)

// counter counts its runs in its key, so that a test sees how often a script ran.
var counter = redisx.NewScript(`return redis.call('INCR', KEYS[1])`)

func TestAPipelineThatMeetsRedisWithoutItsScriptsLoadsThemAndRunsEachOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rdb  func(t *testing.T) redis.UniversalClient
	}{
		{"on one server", func(t *testing.T) redis.UniversalClient { return redistest.Client(t, redistest.Run(t)) }},
		{"on a cluster", func(t *testing.T) redis.UniversalClient {
			return redistest.ClusterClient(t, redistest.RunCluster(t))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb := tc.rdb(t)
			keys := make([]string, 12) // over every master of a cluster
			for i := range keys {
				keys[i] = fmt.Sprintf("count:{%d}", i)
			}
			for run := int64(1); run <= 2; run++ {
				redistest.FlushScripts(t, rdb)
				pipe := rdb.Pipeline()
				for _, k := range keys {
					counter.EvalSha(t.Context(), pipe, []string{k})
				}
				cmds, err := redisx.Exec(t.Context(), rdb, pipe)
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				for i, c := range cmds {
					if n, err := c.(*redis.Cmd).Int64(); err != nil || n != run {
						t.Fatalf("run %d: the script on %s answered %d, %v; want %d", run, keys[i], n, err, run)
					}
				}
			}
		})
	}
}

// flushBeforeScripts is a hook that makes Redis forget its scripts before each pipeline that
// runs one, and counts those pipelines.
type flushBeforeScripts struct {
	flusher   redis.UniversalClient
	pipelines *atomic.Int64
}

func (h flushBeforeScripts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h flushBeforeScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h flushBeforeScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "evalsha" }) {
			h.pipelines.Add(1)
			if err := h.flusher.ScriptFlush(ctx).Err(); err != nil {
				return err
			}
		}
		return next(ctx, cmds)
	}
}

func TestAPipelineWhoseScriptsAreLostAgainBeforeItsSecondRunFailsWithoutAThird(t *testing.T) {
	t.Parallel()
	server := redistest.Run(t)
	rdb := redistest.Client(t, server)
	var pipelines atomic.Int64
	rdb.AddHook(flushBeforeScripts{flusher: redistest.Client(t, server), pipelines: &pipelines})
	pipe := rdb.Pipeline()
	counter.EvalSha(t.Context(), pipe, []string{"count"})
	_, err := redisx.Exec(t.Context(), rdb, pipe)
	if !redisx.IsNoScript(err) {
		t.Fatalf("Exec returned %v, want NOSCRIPT", err)
	}
	if n := pipelines.Load(); n != 2 {
		t.Fatalf("the pipeline ran %d times, want 2", n)
	}
	if n, err := rdb.Exists(t.Context(), "count").Result(); err != nil || n != 0 {
		t.Fatalf("the script ran: EXISTS count = %d, %v", n, err)
	}
}

func TestAPipelineRunAgainForItsScriptsRunsItsOtherCommandsOnce(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	redistest.FlushScripts(t, rdb)
	pipe := rdb.Pipeline()
	incr := pipe.Incr(t.Context(), "plain") // a write that would count twice if run twice
	counter.EvalSha(t.Context(), pipe, []string{"count"})
	if _, err := redisx.Exec(t.Context(), rdb, pipe); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Get(t.Context(), "plain").Int64(); err != nil || n != 1 || incr.Val() != 1 {
		t.Fatalf("the plain write beside the script left %d (%v), answered %d; want it run once", n, err, incr.Val())
	}
	if n, err := rdb.Get(t.Context(), "count").Int64(); err != nil || n != 1 {
		t.Fatalf("the script ran %d times (%v), want once", n, err)
	}
}
