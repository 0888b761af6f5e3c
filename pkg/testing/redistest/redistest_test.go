package redistest_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
)

func TestRunStartsARedisThatTheClientCanUse(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t, redistest.Run(t))
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(t.Context(), "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v; want v", got, err)
	}
}

func TestRunClusterStartsThreeMastersThatShareTheSlots(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cluster := redistest.RunCluster(t)
	c := redistest.ClusterClient(t, cluster)
	// Keys with distinct hash tags land on every master; each command goes to its key's master.
	var want []string
	for i := range 30 {
		k := fmt.Sprintf("k:{%d}", i)
		if err := c.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		want = append(want, k)
	}
	holders := 0
	for _, s := range cluster.Servers {
		admin := redis.NewClient(&redis.Options{Addr: s.Addr()})
		n, err := admin.DBSize(ctx).Result()
		_ = admin.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			holders++
		}
	}
	if holders != redistest.ClusterMasters {
		t.Errorf("%d masters hold keys, want all %d", holders, redistest.ClusterMasters)
	}
	slices.Sort(want)
	if got, err := redistest.Keys(ctx, c, "k:*"); err != nil || !slices.Equal(got, want) {
		t.Errorf("Keys = %v, %v; want %v", got, err, want)
	}
	if err := redistest.FlushAll(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := redistest.Keys(ctx, c, "*"); err != nil || len(got) != 0 {
		t.Errorf("after FlushAll the cluster holds %v, %v", got, err)
	}
}

func TestAClusterGivenBackToThePoolIsLentAgainEmpty(t *testing.T) {
	t.Parallel()
	pool := redistest.NewClusterPool(t)
	var first *redistest.Cluster
	t.Run("the first test writes", func(t *testing.T) {
		first = pool.Take(t)
		if err := redistest.ClusterClient(t, first).Set(t.Context(), "left:{behind}", "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the next test finds the same cluster empty", func(t *testing.T) {
		c := pool.Take(t)
		if c != first {
			t.Error("the pool started a second cluster while the first was free")
		}
		if keys, err := redistest.Keys(t.Context(), redistest.ClusterClient(t, c), "*"); err != nil || len(keys) != 0 {
			t.Errorf("the lent cluster holds %v, %v; want no keys", keys, err)
		}
	})
}
