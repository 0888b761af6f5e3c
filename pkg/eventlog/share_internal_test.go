package eventlog

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestAPartitionIsOrphanedOnlyWhileEventsWaitAndNobodyHoldsIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := Open(ctx, natstest.Connect(t, natstest.RunServer(t)), Config{})
	if err != nil {
		t.Fatal(err)
	}
	conss, err := l.ensureConsumers(ctx, ConsumerConfig{Durable: "orphan"}.withDefaults(nil))
	if err != nil {
		t.Fatal(err)
	}
	part := Partition("A")
	cons := conss[part]
	if l.orphaned(ctx, cons) {
		t.Fatal("a partition with nothing waiting is orphaned: a replica would ask for it for nothing")
	}
	if _, err := l.Append(ctx, &whistlev1.Event{IssueId: "A", OccurredAt: timestamppb.Now(),
		Payload: &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{GridId: "g", CategoryId: "c", Text: "t"}}}); err != nil {
		t.Fatal(err)
	}
	if !l.orphaned(ctx, cons) {
		t.Fatal("an event waits and nobody asks for the partition, and it is not orphaned")
	}
	// A client asking in the owners' group is pinned with the message: the partition is held.
	batch, err := cons.Fetch(1, jetstream.FetchPriorityGroup(OwnerGroup), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}
	if l.orphaned(ctx, cons) {
		t.Fatal("a partition pinned to a client is orphaned")
	}
	// Unpinned with the message unacknowledged (its holder died, say): orphaned again.
	if err := l.stream.UnpinConsumer(ctx, PartitionDurable("orphan", part), OwnerGroup); err != nil {
		t.Fatal(err)
	}
	if !l.orphaned(ctx, cons) {
		t.Fatal("an unpinned partition whose event was sent and never acknowledged is not orphaned")
	}
}
