package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestTwoEventsOfOneKindOnOneIssueWithinTheDuplicateWindowAreBothStoredAndApplied(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	p := newMem()
	if _, err := l.Decide(ctx, p, "A", func(context.Context) (*whistlev1.Event, error) { return raised("A"), nil }); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, dept := range []string{"water", "water"} { // the same kind, the same department, twice
		rec, err := l.Decide(ctx, p, "A", func(ctx context.Context) (*whistlev1.Event, error) {
			pos, _ := p.Position(ctx, "A")
			return acked("A", dept, pos.LastSeq), nil
		})
		if err != nil || rec == nil {
			t.Fatalf("decide: %v, %v", rec, err)
		}
		seqs = append(seqs, rec.Seq)
	}
	if seqs[0] == seqs[1] {
		t.Fatalf("both acknowledgements got sequence %d: the second was dropped as a duplicate", seqs[0])
	}
	recs, err := l.Read(ctx, "A", 0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("stream holds %d events of A (%v), want 3", len(recs), err)
	}
	if recs[1].Event.GetId() == recs[2].Event.GetId() {
		t.Fatalf("two occurrences share the message id %q", recs[1].Event.GetId())
	}
	if got := p.applied["A"]; len(got) != 3 {
		t.Fatalf("applied %v, want all three events", got)
	}
}

func TestARetriedAppendOfTheSameDecisionIsStoredOnce(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	first, err := l.Append(ctx, raised("A"))
	if err != nil {
		t.Fatal(err)
	}
	ack := acked("A", "water", first)
	s1, err := l.Append(ctx, ack)
	if err != nil {
		t.Fatal(err)
	}
	// The PubAck was lost; the caller sends it again. A single server refuses it on its sequence,
	// a cluster as a duplicate of the stored one: either way it is not stored twice.
	s2, err := l.Append(ctx, proto.CloneOf(ack))
	if !errors.Is(err, eventlog.ErrConflict) && (err != nil || s2 != s1) {
		t.Fatalf("retry = %d, %v; want a conflict or the stored %d", s2, err, s1)
	}
	if recs, _ := l.Read(ctx, "A", 0); len(recs) != 2 {
		t.Fatalf("stream holds %d events of A, want 2", len(recs))
	}
}

func TestDecideReturnsTheEventWithTheTimeTheStreamStoredIt(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	before := time.Now()
	rec, err := l.Decide(ctx, newMem(), "A", func(context.Context) (*whistlev1.Event, error) { return raised("A"), nil })
	if err != nil {
		t.Fatal(err)
	}
	stored, err := l.Read(ctx, "A", 0)
	if err != nil || len(stored) != 1 {
		t.Fatal(stored, err)
	}
	if !rec.Time.Equal(stored[0].Time) || rec.Time.Before(before.Add(-time.Second)) {
		t.Fatalf("Decide's record says %v, the stream stored it at %v", rec.Time, stored[0].Time)
	}
	now, err := l.Now(ctx)
	if err != nil || now.Before(rec.Time) {
		t.Fatalf("stream clock %v (%v) is before an event it stored at %v", now, err, rec.Time)
	}
}

func TestAnUnawaitedDecideReturnsTheStoredEventWithoutTheProjectionApplyingIt(t *testing.T) {
	l := openLog(t)
	ctx := eventlog.Unawaited(context.Background())
	p := newMem()
	rec, err := l.Decide(ctx, p, "A", func(context.Context) (*whistlev1.Event, error) { return raised("A"), nil })
	if err != nil {
		t.Fatal(err)
	}
	stored, err := l.Read(ctx, "A", 0)
	if err != nil || len(stored) != 1 {
		t.Fatal(stored, err)
	}
	if rec.Seq != stored[0].Seq || !proto.Equal(rec.Event, stored[0].Event) || !rec.Time.IsZero() {
		t.Fatalf("Decide returned %v at %d (time %v), the stream stored %v at %d", rec.Event, rec.Seq, rec.Time, stored[0].Event, stored[0].Seq)
	}
	if got := p.applied["A"]; len(got) != 0 {
		t.Fatalf("the projection applied %v before Decide returned, which it need not wait for", got)
	}
	// A decision on the stale state loses the race, takes what was stored, and decides again on it.
	rec, err = l.Decide(ctx, p, "A", func(ctx context.Context) (*whistlev1.Event, error) {
		pos, _ := p.Position(ctx, "A")
		return acked("A", "water", pos.LastSeq), nil
	})
	if err != nil || rec.Seq != stored[0].Seq+1 {
		t.Fatalf("the second decision = %v, %v; want the acknowledgement after the raise", rec, err)
	}
}

// publishRaw stores a message on the stream as a process holding the subject's credentials
// could, with no conditional headers, and returns its sequence.
func publishRaw(t *testing.T, nc *nats.Conn, subject string, data []byte) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(context.Background(), subject, data)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func TestEventsThatCanNeverApplyQuarantineTheirIssueAloneAndAreFiledOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		// bad stores the bad event of issue A, whose last sequence is last, and returns its sequence.
		bad    func(t *testing.T, l *eventlog.Log, nc *nats.Conn, last uint64) uint64
		refuse func(rec eventlog.Record) bool
	}{
		{name: "undecodable", bad: func(t *testing.T, _ *eventlog.Log, nc *nats.Conn, _ uint64) uint64 {
			return publishRaw(t, nc, eventlog.Subject("A", "acknowledged"), []byte("not a whistle event"))
		}},
		{name: "breaking its issue's chain", bad: func(t *testing.T, _ *eventlog.Log, nc *nats.Conn, last uint64) uint64 {
			data, _ := proto.Marshal(acked("A", "water", last+1000))
			return publishRaw(t, nc, eventlog.Subject("A", "acknowledged"), data)
		}},
		{name: "filed under another kind's subject", bad: func(t *testing.T, _ *eventlog.Log, nc *nats.Conn, last uint64) uint64 {
			data, _ := proto.Marshal(acked("A", "water", last))
			return publishRaw(t, nc, eventlog.Subject("A", "breached"), data)
		}},
		{name: "refused as impossible", refuse: func(rec eventlog.Record) bool {
			return rec.Event.GetAcknowledged().GetDepartmentId() == "nobody"
		}, bad: func(t *testing.T, l *eventlog.Log, _ *nats.Conn, last uint64) uint64 {
			seq, err := l.Append(context.Background(), acked("A", "nobody", last))
			if err != nil {
				t.Fatal(err)
			}
			return seq
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := natstest.RunServer(t)
			nc := natstest.Connect(t, srv)
			l := openLogOn(t, nc)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a1, _ := l.Append(ctx, raised("A"))
			bad := tc.bad(t, l, nc, a1)
			// The issue's later events follow the stored chain, as conditional appends do.
			a3, err := l.Append(ctx, acked("A", "power", bad))
			if err != nil {
				t.Fatal(err)
			}
			b1, _ := l.Append(ctx, raised("B"))
			b2, _ := l.Append(ctx, acked("B", "water", b1))

			p := newMem()
			p.refuse = tc.refuse
			done := make(chan error, 1)
			go func() { done <- l.Consume(ctx, eventlog.ConsumerConfig{Durable: "mem"}, p, nil) }()
			wait.For(t, 20*time.Second, 20*time.Millisecond, func() error {
				if n, err := l.Pending(ctx, "mem"); err != nil || n != 0 {
					return fmt.Errorf("pending = %d, %v: the bad event holds the consumer up", n, err)
				}
				return nil
			})
			if got := p.applied["B"]; len(got) != 2 || got[1] != b2 {
				t.Fatalf("B applied %v, want both its events", got)
			}
			pos, _ := p.Position(ctx, "A")
			if pos.Quarantine == nil || pos.Quarantine.Seq != bad || pos.LastSeq != a3 || pos.Quarantine.Held != 1 {
				t.Fatalf("A at %+v (mark %+v); want quarantined at %d with %d held", pos, pos.Quarantine, bad, a3)
			}
			if got := p.applied["A"]; len(got) != 1 {
				t.Fatalf("A applied %v, want only its raise: events after the bad one are held", got)
			}
			h := wantDeadLetter(t, l, "mem", bad, "A")
			if h.Get(eventlog.HeaderDeadSubject) == "" || h.Get(eventlog.HeaderDeadStoredAt) == "" {
				t.Fatalf("dead letter headers %v", *h)
			}

			// Commands on the quarantined issue are refused; others go on.
			_, err = l.Decide(ctx, p, "A", func(context.Context) (*whistlev1.Event, error) { return acked("A", "gas", a3), nil })
			if !errors.Is(err, eventlog.ErrQuarantined) {
				t.Fatalf("deciding on A: %v, want ErrQuarantined", err)
			}

			// A rebuild meets the same event and files nothing twice.
			cancel()
			<-done
			if err := l.DeleteConsumer(context.Background(), "mem"); err != nil {
				t.Fatal(err)
			}
			rebuilt := newMem()
			rebuilt.refuse = tc.refuse
			ctx2, cancel2 := context.WithCancel(context.Background())
			defer cancel2()
			go func() { _ = l.Consume(ctx2, eventlog.ConsumerConfig{Durable: "mem"}, rebuilt, nil) }()
			wait.For(t, 20*time.Second, 20*time.Millisecond, func() error {
				if n, err := l.Pending(ctx2, "mem"); err != nil || n != 0 {
					return fmt.Errorf("pending = %d, %v", n, err)
				}
				return nil
			})
			want, _ := p.dump(ctx)
			if got, _ := rebuilt.dump(ctx); got != want {
				t.Fatalf("the rebuild differs:\n%s\nwant\n%s", got, want)
			}
			if n := countDeadLetters(t, l); n != 1 {
				t.Fatalf("%d dead letters after the rebuild, want 1", n)
			}
		})
	}
}

func TestAReplicaMeetingTheBadEventWhileCatchingUpQuarantinesTheSameWay(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	l := openLogOn(t, nc)
	ctx := context.Background()
	a1, _ := l.Append(ctx, raised("A"))
	bad := publishRaw(t, nc, eventlog.Subject("A", "acknowledged"), []byte{0xff, 0x01})
	a3, _ := l.Append(ctx, acked("A", "power", bad))
	recs, err := l.Read(ctx, "A", bad)
	if err != nil || len(recs) != 1 {
		t.Fatal(recs, err)
	}
	// The last event arrives first, as it may at a replica: the catch-up meets the bad one.
	p := newMem()
	if err := l.Project(p, nil)(ctx, recs[0]); err != nil {
		t.Fatal(err)
	}
	pos, _ := p.Position(ctx, "A")
	if pos.Quarantine == nil || pos.Quarantine.Seq != bad || pos.LastSeq != a3 || len(p.applied["A"]) != 1 || p.applied["A"][0] != a1 {
		t.Fatalf("A at %+v, applied %v", pos, p.applied["A"])
	}
	wantDeadLetter(t, l, "mem", bad, "A")
}

func TestAReadOnlyLogAppendsNothing(t *testing.T) {
	l := openLog(t).ReadOnly()
	if _, err := l.Append(context.Background(), raised("A")); !errors.Is(err, eventlog.ErrReadOnly) {
		t.Fatalf("append on a read-only log: %v, want ErrReadOnly", err)
	}
	if head, _ := l.Head(context.Background()); head != 0 {
		t.Fatalf("the stream holds %d events", head)
	}
}

func TestNothingToDoOnAStaleStateIsDecidedAgainOnceTheProjectionTookWhatTheStreamHolds(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	p := newMem()
	if _, err := l.Decide(ctx, p, "A", func(context.Context) (*whistlev1.Event, error) { return raised("A"), nil }); err != nil {
		t.Fatal(err)
	}
	// Another writer stores an acknowledgement that p has not applied.
	if _, err := l.Append(ctx, acked("A", "water", p.applied["A"][0])); err != nil {
		t.Fatal(err)
	}
	// A command that finds nothing to do on the raise alone must look again once p holds the
	// acknowledgement, and then it has something to do.
	var rounds []int
	rec, err := l.Decide(ctx, p, "A", func(ctx context.Context) (*whistlev1.Event, error) {
		rounds = append(rounds, len(p.applied["A"]))
		if len(p.applied["A"]) < 2 {
			return nil, nil
		}
		pos, _ := p.Position(ctx, "A")
		return acked("A", "roads", pos.LastSeq), nil
	})
	if err != nil || rec == nil || len(rounds) != 2 || rounds[1] != 2 {
		t.Fatalf("Decide = %v, %v after rounds seeing %v events; want a decision on the raise and the acknowledgement", rec, err, rounds)
	}
	// With nothing unseen, nothing to do is the answer, after one round.
	rounds = nil
	rec, err = l.Decide(ctx, p, "A", func(context.Context) (*whistlev1.Event, error) {
		rounds = append(rounds, len(p.applied["A"]))
		return nil, nil
	})
	if err != nil || rec != nil || len(rounds) != 1 {
		t.Fatalf("Decide with nothing unseen = %v, %v after %d rounds; want nothing after one", rec, err, len(rounds))
	}
}
