package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

// samePartition returns n issue ids of one partition, so that their events reach one consumer.
func samePartition(n int) []string {
	ids := []string{"A"}
	for i := 0; len(ids) < n; i++ {
		if id := fmt.Sprintf("B%d", i); eventlog.Partition(id) == eventlog.Partition(ids[0]) {
			ids = append(ids, id)
		}
	}
	return ids
}

func TestMessagesWaitingBehindARetriedFailureAreNotDeliveredAgain(t *testing.T) {
	nc := natstest.Connect(t, natstest.RunServer(t))
	l := openLogOn(t, nc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ids := samePartition(4)
	for _, id := range ids {
		if _, err := l.Append(ctx, raised(id)); err != nil {
			t.Fatal(err)
		}
	}
	// The first issue's event fails as it would while Redis is away, for several ack waits; one
	// worker leaves the batch's other messages waiting behind it, unacknowledged.
	const ackWait = time.Second
	outage := time.Now().Add(5 * ackWait)
	var tries atomic.Int32
	var handled sync.Map // issue -> *atomic.Int32: how often its event reached the reaction
	for _, id := range ids {
		handled.Store(id, new(atomic.Int32))
	}
	cfg := eventlog.ConsumerConfig{Durable: "patient", Workers: 1, AckWait: ackWait}
	p := newMem()
	done := make(chan error, 1)
	go func() {
		done <- l.Consume(ctx, cfg, p, func(_ context.Context, rec eventlog.Record) error {
			if rec.Event.GetIssueId() == ids[0] && time.Now().Before(outage) {
				tries.Add(1)
				return errors.New("redis is away")
			}
			n, _ := handled.Load(rec.Event.GetIssueId())
			n.(*atomic.Int32).Add(1)
			return nil
		})
	}()
	wait.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		if n, err := l.Pending(ctx, cfg.Durable); err != nil || n != 0 {
			return fmt.Errorf("pending = %d, %v", n, err)
		}
		return nil
	})
	if tries.Load() < 2 {
		t.Fatalf("the failing event was tried %d times; the outage must outlast a retry", tries.Load())
	}
	// Every message was kept in progress while it waited: none was sent again (which would run its
	// reaction again), so none spent a delivery towards DeliveryLimit.
	for _, id := range ids {
		if n, _ := handled.Load(id); n.(*atomic.Int32).Load() != 1 {
			t.Errorf("%s's event reached the reaction %d times during a %s outage, want once: what waits must be kept in progress",
				id, n.(*atomic.Int32).Load(), 5*ackWait)
		}
	}
	for _, id := range ids {
		pos, _ := p.Position(ctx, id)
		p.mu.Lock()
		applied := p.applied[id]
		p.mu.Unlock()
		if pos.Quarantine != nil || len(applied) != 1 {
			t.Errorf("%s: applied %v, quarantined %+v; want applied once", id, applied, pos.Quarantine)
		}
	}
	if n := countDeadLetters(t, l); n != 0 {
		t.Errorf("%d dead letters; a failure that passes files none", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("consume ended with %v", err)
	}
}

func TestABatchIsAcknowledgedOnlyOnceEveryReactionInItHasRun(t *testing.T) {
	srv := natstest.RunServer(t)
	l := openLogOn(t, natstest.Connect(t, srv))
	ctx := context.Background()
	ids := samePartition(2)
	for _, id := range ids {
		if _, err := l.Append(ctx, raised(id)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := eventlog.ConsumerConfig{Durable: "reactor", AckWait: time.Second}
	// The first consumer reacts to the first issue's raise, and keeps failing on the second's; it
	// stops while it retries, with one reaction of its batch run and the other not.
	var reactedFirst, triedSecond atomic.Int32
	firstCtx, stopFirst := context.WithCancel(ctx)
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- l.Consume(firstCtx, cfg, newMem(), func(_ context.Context, rec eventlog.Record) error {
			if rec.Event.GetIssueId() == ids[1] {
				triedSecond.Add(1)
				return errors.New("redis is away")
			}
			reactedFirst.Add(1)
			return nil
		})
	}()
	wait.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if reactedFirst.Load() == 0 || triedSecond.Load() < 2 {
			return fmt.Errorf("reacted to the first %d times, tried the second %d times", reactedFirst.Load(), triedSecond.Load())
		}
		return nil
	})
	stopFirst()
	if err := <-firstDone; err != nil {
		t.Fatalf("the first consumer ended with %v", err)
	}

	// Nothing of the batch was acknowledged: the next consumer is sent both raises again, and
	// reacts to both.
	var reacted sync.Map // issue -> true
	nextCtx, stopNext := context.WithCancel(ctx)
	defer stopNext()
	go func() {
		_ = openLogOn(t, natstest.Connect(t, srv)).Consume(nextCtx, cfg, newMem(), func(_ context.Context, rec eventlog.Record) error {
			reacted.Store(rec.Event.GetIssueId(), true)
			return nil
		})
	}()
	wait.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		if n, err := l.Pending(ctx, cfg.Durable); err != nil || n != 0 {
			return fmt.Errorf("pending = %d, %v", n, err)
		}
		return nil
	})
	for _, id := range ids {
		if _, ok := reacted.Load(id); !ok {
			t.Errorf("%s's raise did not come again after the consumer stopped with its batch unsettled; the batch was acknowledged too early", id)
		}
	}
}
