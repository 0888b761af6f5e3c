package eventlog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
)

// A consumer an earlier Whistle made acknowledged each message (AckExplicit), which JetStream
// cannot change in place: it is made again with AckAll, and carries on after its ack floor.
func TestAConsumerThatAcknowledgedEachMessageIsMadeAgainFromItsAckFloor(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	l := openLogOn(t, nc)
	ctx := t.Context()
	// Five issues of one partition, raised in turn.
	var seqs []uint64
	part := -1
	for i := 0; len(seqs) < 5; i++ {
		id := fmt.Sprintf("ACK%d", i)
		if part == -1 {
			part = eventlog.Partition(id)
		}
		if eventlog.Partition(id) != part {
			continue
		}
		seq, err := l.Append(ctx, raised(id))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	name := eventlog.PartitionDurable("svc", part)
	old, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubject: eventlog.PartitionSubjects(part)})
	if err != nil {
		t.Fatal(err)
	}
	// The old consumer handled the first two; the third it took and never acknowledged.
	batch, err := old.Fetch(3)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		if n < 2 {
			if err := msg.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		n++
	}

	for range 2 { // and again, on a consumer already made with AckAll
		if err := l.EnsureConsumer(ctx, eventlog.ConsumerConfig{Durable: "svc"}); err != nil {
			t.Fatalf("ensure the consumers: %v", err)
		}
	}
	cons, err := stream.Consumer(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.CachedInfo().Config.AckPolicy; got != jetstream.AckAllPolicy {
		t.Fatalf("the consumer acknowledges with %s, want %s", got, jetstream.AckAllPolicy)
	}
	msgs, err := cons.Fetch(5, jetstream.FetchMaxWait(time.Second), jetstream.FetchPriorityGroup(eventlog.OwnerGroup))
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for msg := range msgs.Messages() {
		meta, err := msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, meta.Sequence.Stream)
	}
	if fmt.Sprint(got) != fmt.Sprint(seqs[2:]) {
		t.Fatalf("the consumer made again delivers %v, want %v (after the two acknowledged)", got, seqs[2:])
	}
}
