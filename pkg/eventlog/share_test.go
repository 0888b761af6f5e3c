package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

// replicaOf is one replica's view of a projection the replicas share (as they share Redis): it
// records the partitions whose events this replica applied since it was last asked.
type replicaOf struct {
	*memProjection
	mu    sync.Mutex
	parts map[int]bool
}

func (r *replicaOf) Apply(ctx context.Context, rec eventlog.Record) error {
	err := r.memProjection.Apply(ctx, rec)
	if err == nil {
		r.mu.Lock()
		r.parts[eventlog.Partition(rec.Event.GetIssueId())] = true
		r.mu.Unlock()
	}
	return err
}

// took returns the partitions applied since the last call, and forgets them.
func (r *replicaOf) took() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Sorted(maps.Keys(r.parts))
	r.parts = map[int]bool{}
	return out
}

func TestReplicasSpreadThePartitionsAndTheLastTakesThemAll(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	la, lb := openLogOn(t, natstest.Connect(t, srv)), openLogOn(t, natstest.Connect(t, srv))
	shared := newMem()
	a := &replicaOf{memProjection: shared, parts: map[int]bool{}}
	b := &replicaOf{memProjection: shared, parts: map[int]bool{}}
	cfg := eventlog.ConsumerConfig{Durable: "spread"}

	ctx := t.Context()
	go func() { _ = la.Consume(ctx, cfg, a, nil) }()
	round := 0
	// raiseEverywhere raises one new issue in every partition and waits until they are applied.
	raiseEverywhere := func() {
		round++
		var ids []string
		for n := 0; len(ids) < eventlog.Partitions; n++ {
			id := fmt.Sprintf("R%d-%d", round, n)
			if eventlog.Partition(id) == len(ids) {
				ids = append(ids, id)
			}
		}
		for _, id := range ids {
			if _, err := la.Append(ctx, raised(id)); err != nil {
				t.Fatal(err)
			}
		}
		wait.For(t, 3*eventlog.MemberTTL, 10*time.Millisecond, func() error {
			for _, id := range ids {
				if pos, _ := shared.Position(ctx, id); pos.LastSeq == 0 {
					return fmt.Errorf("%s is not applied", id)
				}
			}
			return nil
		})
	}
	raiseEverywhere()
	if got := a.took(); len(got) != eventlog.Partitions {
		t.Fatalf("the only replica applied partitions %v, want all %d", got, eventlog.Partitions)
	}

	bctx, stopB := context.WithCancel(ctx)
	bDone := make(chan struct{})
	go func() { defer close(bDone); _ = lb.Consume(bctx, cfg, b, nil) }()
	// The first replica hands on what is over its share; the second takes it.
	half := eventlog.Partitions / 2
	wait.For(t, 4*eventlog.MemberTTL, 0, func() error {
		a.took()
		b.took()
		raiseEverywhere()
		ta, tb := a.took(), b.took()
		if len(ta) != half || len(tb) != half {
			return fmt.Errorf("one round went to partitions %v and %v; want %d each", ta, tb, half)
		}
		return nil
	})

	stopB()
	<-bDone
	wait.For(t, 4*eventlog.MemberTTL, 0, func() error {
		raiseEverywhere()
		if ta, tb := a.took(), b.took(); len(ta) != eventlog.Partitions || len(tb) != 0 {
			return fmt.Errorf("with one replica left, a round went to partitions %v and %v", ta, tb)
		}
		return nil
	})
}

// issuesInEveryPartition returns one new issue id per partition, in partition order.
func issuesInEveryPartition(prefix string) []string {
	ids := make([]string, 0, eventlog.Partitions)
	for n := 0; len(ids) < eventlog.Partitions; n++ {
		if id := fmt.Sprintf("%s-%d", prefix, n); eventlog.Partition(id) == len(ids) {
			ids = append(ids, id)
		}
	}
	return ids
}

// A replica killed does not leave the members bucket: it counts for MemberTTL after it last
// said it was alive, while the server unpins its partitions after OwnerTTL, and the survivor,
// which has been asking for them, takes them. The survivor then holds more than its share of two
// replicas, and must not hand partitions on to the dead one, nor leave any without a consumer.
func TestAReplicaWhoseOtherWasKilledAppliesEveryPartitionWhileTheDeadOneStillCounts(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	doomed := natstest.Connect(t, srv)
	la, lb := openLogOn(t, doomed), openLogOn(t, natstest.Connect(t, srv))
	shared := newMem()
	a := &replicaOf{memProjection: shared, parts: map[int]bool{}}
	b := &replicaOf{memProjection: shared, parts: map[int]bool{}}
	cfg := eventlog.ConsumerConfig{Durable: "survivor"}
	ctx := t.Context()

	round := 0
	// raiseEverywhere raises one new issue in every partition and waits up to within until every
	// one is applied.
	raiseEverywhere := func(within time.Duration) {
		t.Helper()
		round++
		ids := issuesInEveryPartition(fmt.Sprintf("K%d", round))
		for _, id := range ids {
			if _, err := lb.Append(ctx, raised(id)); err != nil {
				t.Fatal(err)
			}
		}
		wait.For(t, within, 10*time.Millisecond, func() error {
			for _, id := range ids {
				if pos, _ := shared.Position(ctx, id); pos.LastSeq == 0 {
					return fmt.Errorf("%s (partition %d) is not applied", id, eventlog.Partition(id))
				}
			}
			return nil
		})
	}

	go func() { _ = la.Consume(ctx, cfg, a, nil) }()
	raiseEverywhere(eventlog.MemberTTL)
	go func() { _ = lb.Consume(ctx, cfg, b, nil) }()
	// The two spread the partitions, and go on doing so long enough that each has since said
	// how many it holds.
	half := eventlog.Partitions / 2
	var balanced time.Time
	wait.For(t, 6*eventlog.MemberTTL, 0, func() error {
		a.took()
		b.took()
		raiseEverywhere(eventlog.MemberTTL)
		if ta, tb := a.took(), b.took(); len(ta) != half || len(tb) != half {
			balanced = time.Time{}
			return fmt.Errorf("one round went to partitions %v and %v; want %d each", ta, tb, half)
		}
		if balanced.IsZero() {
			balanced = time.Now()
		}
		if time.Since(balanced) < eventlog.MemberTTL/2 {
			return errors.New("balanced only since " + balanced.Format(time.StampMilli))
		}
		return nil
	})

	// Killed: its connection is gone, so it neither leaves the members bucket nor unpins.
	doomed.Close()
	// The survivor takes the dead one's partitions once the server unpins them (OwnerTTL), or at
	// the latest once the dead one stops counting (MemberTTL after its last beat); on a machine
	// loaded by a whole test suite that can take a while longer.
	raiseEverywhere(eventlog.OwnerTTL + 2*eventlog.MemberTTL)
	// From then on every partition has a consumer: each round is applied at once, while the
	// dead replica may still count and after it has stopped counting. A partition handed on to
	// it would wait for MemberTTL.
	for took := time.Now(); time.Since(took) < eventlog.MemberTTL+eventlog.MemberTTL/2; {
		raiseEverywhere(eventlog.MemberTTL / 3)
	}
	if ta := a.took(); len(ta) != 0 {
		t.Fatalf("the killed replica applied partitions %v", ta)
	}
}
