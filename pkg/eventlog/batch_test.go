package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	ids := samePartition(7)
	// The first issue's event fails as it would while Redis is away, for several ack waits. One
	// worker leaves the other messages of its batch waiting behind it, and the events appended
	// once it fails wait, taken from the server but in no batch yet, for the batch to end: all of
	// them unacknowledged.
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
	for _, id := range ids[:4] {
		if _, err := l.Append(ctx, raised(id)); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		if tries.Load() == 0 {
			return errors.New("the first event has not failed yet")
		}
		return nil
	})
	for _, id := range ids[4:] {
		if _, err := l.Append(ctx, raised(id)); err != nil {
			t.Fatal(err)
		}
	}
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
	nc := natstest.Connect(t, srv)
	l := openLogOn(t, nc)
	ctx := context.Background()
	ids := samePartition(2)
	seqs := map[string]uint64{}
	for _, id := range ids {
		seq, err := l.Append(ctx, raised(id))
		if err != nil {
			t.Fatal(err)
		}
		seqs[id] = seq
	}
	cfg := eventlog.ConsumerConfig{Durable: "reactor", AckWait: time.Second}
	// The first consumer reacts to the first issue's raise, and keeps failing on the second's; it
	// stops while it retries. Whether both raises came in one batch or not, nothing from the
	// second's on may be acknowledged.
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
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, eventlog.StreamName, eventlog.PartitionDurable(cfg.Durable, eventlog.Partition(ids[0])))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	floor := info.AckFloor.Stream
	if floor >= seqs[ids[1]] {
		t.Fatalf("the ack floor is %d, at or past %s's raise (%d), whose reaction never ran: a batch was acknowledged too early",
			floor, ids[1], seqs[ids[1]])
	}

	// What was not acknowledged comes again to the next consumer, which reacts to it.
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
		if _, ok := reacted.Load(id); !ok && seqs[id] > floor {
			t.Errorf("%s's raise (%d), above the ack floor %d, did not come again to the next consumer", id, seqs[id], floor)
		}
	}
}
