package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/projectiontest"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func openLog(t *testing.T) *eventlog.Log {
	t.Helper()
	return openLogOn(t, natstest.Connect(t, natstest.RunServer(t)))
}

func openLogOn(t *testing.T, nc *nats.Conn) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(context.Background(), nc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func raised(issue string) *whistlev1.Event {
	return &whistlev1.Event{Id: issue + ".raised", IssueId: issue, OccurredAt: timestamppb.Now(),
		Payload: &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{GridId: "g", CategoryId: "c", Text: "t"}}}
}

func acked(issue, dept string, prev uint64) *whistlev1.Event {
	return &whistlev1.Event{Id: issue + ".acknowledged." + dept, IssueId: issue, PrevSeq: prev, OccurredAt: timestamppb.Now(),
		Payload: &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: dept}}}
}

// memProjection records, per issue, the sequences applied, enforcing the Projection contract.
type memProjection struct {
	mu      sync.Mutex
	applied map[string][]uint64
	last    map[string]uint64
	marks   map[string]*quarantine.Mark
	// refuse, when set, names records the projection refuses as impossible.
	refuse func(rec eventlog.Record) bool
}

func newMem() *memProjection {
	return &memProjection{applied: map[string][]uint64{}, last: map[string]uint64{}, marks: map[string]*quarantine.Mark{}}
}

func (m *memProjection) Name() string { return "mem" }

func (m *memProjection) Position(_ context.Context, issue string) (eventlog.Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var q *quarantine.Mark
	if mk := m.marks[issue]; mk != nil {
		c := *mk
		q = &c
	}
	return eventlog.Position{LastSeq: m.last[issue], Quarantine: q}, nil
}

func (m *memProjection) Apply(_ context.Context, rec eventlog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	issue := rec.Event.GetIssueId()
	step, err := eventlog.Admit(m.last[issue], m.marks[issue], rec)
	switch {
	case step == eventlog.Skip:
		return err
	case step == eventlog.Hold:
		m.marks[issue].Held++
	case m.refuse != nil && m.refuse(rec):
		return eventlog.Impossible("refused %d", rec.Seq)
	default:
		m.applied[issue] = append(m.applied[issue], rec.Seq)
	}
	m.last[issue] = rec.Seq
	return nil
}

func (m *memProjection) Quarantine(_ context.Context, issue string, mk quarantine.Mark) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch q := m.marks[issue]; {
	case q == nil:
		m.marks[issue] = &mk
	case mk.Seq > m.last[issue]:
		q.Held++
	default:
		return nil
	}
	m.last[issue] = max(m.last[issue], mk.Seq)
	return nil
}

func (m *memProjection) dump(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, issue := range slices.Sorted(maps.Keys(m.last)) {
		fmt.Fprintf(&b, "%s applied %v\n", issue, m.applied[issue])
		if q := m.marks[issue]; q != nil {
			fmt.Fprintf(&b, "%s quarantine {\"seq\":%d,\"held\":%d} %s\n", issue, q.Seq, q.Held, q.Reason)
		}
	}
	return b.String(), nil
}

func TestTheInMemoryProjectionKeepsTheProjectionContract(t *testing.T) {
	projectiontest.Run(t, func(*testing.T) projectiontest.Subject {
		m := newMem()
		return projectiontest.Subject{Projection: m, Dump: m.dump}
	}, func(issue string) []*whistlev1.Event {
		return []*whistlev1.Event{raised(issue), acked(issue, "water", 0), acked(issue, "power", 0)}
	})
}

func TestAnAppendConditionalOnAStaleSequenceLosesWithAConflict(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	seq, err := l.Append(ctx, raised("A"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Append(ctx, acked("A", "water", 0))
	var conflict *eventlog.ConflictError
	if !errors.As(err, &conflict) || !errors.Is(err, eventlog.ErrConflict) || conflict.Actual != seq {
		t.Fatalf("stale append: err = %v, want a conflict naming sequence %d", err, seq)
	}
	if _, err := l.Append(ctx, acked("A", "water", seq)); err != nil {
		t.Fatalf("append on the current sequence: %v", err)
	}
	if last, _ := l.Last(ctx, "A"); last != seq+1 {
		t.Fatalf("last = %d, want %d", last, seq+1)
	}
}

func TestReadReturnsOnlyTheIssuesEventsInStreamOrder(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	a1, _ := l.Append(ctx, raised("A"))
	_, _ = l.Append(ctx, raised("B"))
	a2, err := l.Append(ctx, acked("A", "water", a1))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.Read(ctx, "A", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Seq != a1 || recs[1].Seq != a2 || eventlog.Kind(recs[1].Event) != "acknowledged" {
		t.Fatalf("read A = %+v", recs)
	}
	if recs, _ := l.Read(ctx, "A", a2); len(recs) != 0 {
		t.Fatalf("read after the last = %d records, want none", len(recs))
	}
}

func TestConcurrentDecisionsOnOneIssueAppendOneEvent(t *testing.T) {
	srv := natstest.RunServer(t)
	l := openLogOn(t, natstest.Connect(t, srv))
	ctx := context.Background()
	p := newMem()
	if _, err := l.Decide(ctx, p, "A", func(context.Context) (*whistlev1.Event, error) { return raised("A"), nil }); err != nil {
		t.Fatal(err)
	}
	// Ten processes decide at once, each on a log of its own: the commands of one process take
	// turns, so only the conditional append stands between those of different ones.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		l := openLogOn(t, natstest.Connect(t, srv))
		wg.Go(func() {
			rec, err := l.Decide(ctx, p, "A", func(ctx context.Context) (*whistlev1.Event, error) {
				pos, _ := p.Position(ctx, "A")
				last := pos.LastSeq
				if last > 1 {
					return nil, nil // someone acknowledged already
				}
				return acked("A", fmt.Sprint("officer-", i), last), nil
			})
			if err != nil {
				t.Error(err)
			}
			if rec != nil {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d decisions appended, want exactly 1", wins.Load())
	}
	if recs, _ := l.Read(ctx, "A", 0); len(recs) != 2 {
		t.Fatalf("stream holds %d events of A, want 2", len(recs))
	}
}

func TestTwoCommandsOnOneIssueInOneProcessTakeTurnsInsteadOfConflicting(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	p := newMem()
	if _, err := l.Decide(ctx, p, "A", func(context.Context) (*whistlev1.Event, error) { return raised("A"), nil }); err != nil {
		t.Fatal(err)
	}
	// Two departments report in at once, and each decision waits a while for the other to begin:
	// deciding side by side, both would decide on the raise, and one would lose its append to the
	// other and decide again.
	var rounds, began atomic.Int32
	both := make(chan struct{})
	var wg sync.WaitGroup
	for _, dept := range []string{"water", "power"} {
		wg.Go(func() {
			_, err := l.Decide(ctx, p, "A", func(ctx context.Context) (*whistlev1.Event, error) {
				rounds.Add(1)
				if began.Add(1) == 2 {
					close(both)
				}
				select {
				case <-both:
				case <-time.After(300 * time.Millisecond):
				}
				pos, err := p.Position(ctx, "A")
				return acked("A", dept, pos.LastSeq), err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := rounds.Load(); n != 2 {
		t.Errorf("the two commands decided %d times, want once each: the second must decide on the state the first left", n)
	}
	if recs, _ := l.Read(ctx, "A", 0); len(recs) != 3 {
		t.Fatalf("stream holds %d events of A, want the raise and both reports", len(recs))
	}
}

func TestProjectAppliesAnIssuesEventsInOrderWhateverOrderTheyArriveIn(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	s1, _ := l.Append(ctx, raised("A"))
	s2, _ := l.Append(ctx, acked("A", "water", s1))
	recs, _ := l.Read(ctx, "A", 0)
	p := newMem()
	h := l.Project(p, nil)
	// The second event arrives first, as it may when replicas share a consumer.
	if err := h(ctx, recs[1]); err != nil {
		t.Fatal(err)
	}
	if err := h(ctx, recs[0]); err != nil {
		t.Fatal(err)
	}
	if got := p.applied["A"]; len(got) != 2 || got[0] != s1 || got[1] != s2 {
		t.Fatalf("applied %v, want [%d %d]", got, s1, s2)
	}
}

func TestEveryMessageMeetsAnExplicitFate(t *testing.T) {
	l := openLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _ = l.Append(ctx, raised("FLAKY"))
	poison, _ := l.Append(ctx, raised("POISON"))
	var flakyTries atomic.Int32
	var sawFailing atomic.Bool
	var handled sync.Map
	p := newMem()
	done := make(chan error, 1)
	go func() {
		done <- l.Consume(ctx, eventlog.ConsumerConfig{Durable: "test"}, p, func(_ context.Context, rec eventlog.Record) error {
			switch rec.Event.GetIssueId() {
			case "FLAKY":
				if flakyTries.Add(1) < 3 {
					if flakyTries.Load() == 2 && eventlog.Failing("test") != nil {
						sawFailing.Store(true)
					}
					return errors.New("redis is away")
				}
			case "POISON":
				return eventlog.Permanent(errors.New("can never apply"))
			}
			handled.Store(rec.Event.GetIssueId(), true)
			return nil
		})
	}()
	wait.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		if _, ok := handled.Load("FLAKY"); !ok {
			return fmt.Errorf("the flaky event is not handled yet (%d tries)", flakyTries.Load())
		}
		if n, err := l.Pending(ctx, "test"); err != nil || n != 0 {
			return fmt.Errorf("pending = %d, %v", n, err)
		}
		return nil
	})
	if !sawFailing.Load() {
		t.Fatal("the consumer did not report itself failing while it retried")
	}
	if err := eventlog.Failing("test"); err != nil {
		t.Fatalf("the consumer still reports %v once the failure passed", err)
	}
	if _, ok := handled.Load("POISON"); ok {
		t.Fatal("the poison event was handled")
	}
	wantDeadLetter(t, l, "mem", poison, "POISON")
	if pos, _ := p.Position(ctx, "POISON"); pos.Quarantine == nil || pos.Quarantine.Seq != poison {
		t.Fatalf("POISON's position %+v: not quarantined at %d", pos, poison)
	}
	if n := countDeadLetters(t, l); n != 1 {
		t.Fatalf("%d dead letters, want 1: the transient failure must never dead-letter", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("consume ended with %v", err)
	}
}

// wantDeadLetter checks the dead letter the consumer filed for the event at seq.
func wantDeadLetter(t *testing.T, l *eventlog.Log, consumer string, seq uint64, issue string) *nats.Header {
	t.Helper()
	raw, err := l.DeadLetters().GetLastMsgForSubject(context.Background(), fmt.Sprintf("%s.%s.%d", eventlog.DeadLetterRoot, consumer, seq))
	if err != nil {
		t.Fatalf("no dead letter for %d: %v", seq, err)
	}
	h := raw.Header
	for name, want := range map[string]string{
		eventlog.HeaderDeadSeq:   fmt.Sprint(seq),
		"Nats-Msg-Id":            fmt.Sprintf("%s.%d", consumer, seq),
		eventlog.HeaderDeadMsgID: "",
	} {
		if got := h.Get(name); want != "" && got != want {
			t.Fatalf("dead letter %s = %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(h.Get(eventlog.HeaderDeadSubject), strings.TrimSuffix(eventlog.IssueSubjects(issue), ">")) || h.Get(eventlog.HeaderDeadReason) == "" ||
		h.Get(eventlog.HeaderDeadDeliveries) == "" {
		t.Fatalf("dead letter headers %v: want the original subject, the reason and the delivery count", h)
	}
	return &h
}

// countDeadLetters counts the messages in the dead-letter stream.
func countDeadLetters(t *testing.T, l *eventlog.Log) uint64 {
	t.Helper()
	info, err := l.DeadLetters().Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestARetriedDecisionAfterTheProjectionWasLostAppendsNothing(t *testing.T) {
	// A clustered stream reports a retried message id as a duplicate before it checks the
	// sequence; a single server reports a conflict. Either way the retry must see the stored event.
	for _, tc := range []struct {
		name string
		log  func(t *testing.T) *eventlog.Log
	}{
		{"single server", openLog},
		{"three-node cluster", func(t *testing.T) *eventlog.Log {
			servers := natstest.RunCluster(t, 3)
			l, err := eventlog.Open(context.Background(), natstest.Connect(t, servers[0]), eventlog.Config{Replicas: 3})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.log(t)
			ctx := context.Background()
			raiseOnce := func(p *memProjection) func(context.Context) (*whistlev1.Event, error) {
				return func(ctx context.Context) (*whistlev1.Event, error) {
					if pos, _ := p.Position(ctx, "A"); pos.LastSeq > 0 {
						return nil, nil // already raised
					}
					return raised("A"), nil
				}
			}
			first := newMem()
			if rec, err := l.Decide(ctx, first, "A", raiseOnce(first)); err != nil || rec == nil {
				t.Fatalf("first decision: %v, %v", rec, err)
			}
			lost := newMem() // the projection was wiped before the caller retried
			rec, err := l.Decide(ctx, lost, "A", raiseOnce(lost))
			if err != nil || rec != nil {
				t.Fatalf("retried decision appended %v (err %v), want nothing", rec, err)
			}
			if recs, _ := l.Read(ctx, "A", 0); len(recs) != 1 {
				t.Fatalf("stream holds %d events of A, want 1", len(recs))
			}
			if got := lost.applied["A"]; len(got) != 1 {
				t.Fatalf("the retry did not catch the projection up: %v", got)
			}
		})
	}
}

func TestFollowDeliversOnlyStoredEventsAfterItBegan(t *testing.T) {
	l := openLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before, _ := l.Append(ctx, raised("A"))
	head, err := l.Head(ctx)
	if err != nil || head != before {
		t.Fatalf("head = %d, %v; want %d", head, err, before)
	}
	recs, err := l.Follow(ctx, eventlog.IssueSubjects("A"), head)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, acked("A", "water", 0)); err == nil {
		t.Fatal("a stale append was stored")
	}
	_, _ = l.Append(ctx, raised("B"))
	after, err := l.Append(ctx, acked("A", "water", before))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case rec := <-recs:
		if rec.Seq != after {
			t.Fatalf("first followed event is %d, want %d: the refused append or an earlier one showed", rec.Seq, after)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stored event never arrived")
	}
	cancel()
	for range recs { // the channel closes once ctx ends
	}
}

func TestAConsumerThatDiesBeforeAckingMakesNoDuplicateEvent(t *testing.T) {
	srv := natstest.RunServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The reaction to a raise: acknowledge it for water, once.
	react := func(l *eventlog.Log, p *memProjection) eventlog.Handler {
		return l.Project(p, func(ctx context.Context, rec eventlog.Record) error {
			_, err := l.Decide(ctx, p, "A", func(ctx context.Context) (*whistlev1.Event, error) {
				pos, _ := p.Position(ctx, "A")
				last := pos.LastSeq
				if eventlog.Kind(rec.Event) != "raised" || last > rec.Seq {
					return nil, nil // nothing to react to, or reacted already
				}
				return acked("A", "water", last), nil
			})
			return err
		})
	}
	cfg := eventlog.ConsumerConfig{Durable: "reactor", AckWait: time.Second}

	// The first process reacts, then dies before its acknowledgement leaves.
	doomed := natstest.Connect(t, srv)
	first := openLogOn(t, doomed)
	if _, err := first.Append(ctx, raised("A")); err != nil {
		t.Fatal(err)
	}
	reacted := make(chan struct{})
	var die sync.Once
	go func() {
		err := first.Consume(ctx, cfg, nopProjection{}, func(ctx context.Context, rec eventlog.Record) error {
			err := react(first, newMem())(ctx, rec)
			die.Do(func() {
				doomed.Close()
				close(reacted)
			})
			return err
		})
		select {
		case <-reacted: // it died as the test meant: its connection is gone
		default:
			t.Errorf("the first consumer stopped before it reacted: %v", err)
			die.Do(func() { close(reacted) })
		}
	}()
	<-reacted

	// Its successor, with its state lost too, gets the raise again once the ack wait passes.
	second := openLogOn(t, natstest.Connect(t, srv))
	var redelivered atomic.Int32
	successor := react(second, newMem())
	go func() {
		_ = second.Consume(ctx, cfg, nopProjection{}, func(ctx context.Context, rec eventlog.Record) error {
			redelivered.Add(1)
			return successor(ctx, rec)
		})
	}()
	wait.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		if n, err := second.Pending(ctx, "reactor"); err != nil || n != 0 || redelivered.Load() == 0 {
			return fmt.Errorf("pending %d (%v), redelivered %d times", n, err, redelivered.Load())
		}
		return nil
	})
	if recs, _ := second.Read(ctx, "A", 0); len(recs) != 2 {
		t.Fatalf("stream holds %d events of A after the redelivery, want the raise and one reaction", len(recs))
	}
}

// nopProjection keeps nothing: for consumers whose test is in their reaction alone.
type nopProjection struct{}

func (nopProjection) Name() string { return "nop" }
func (nopProjection) Position(context.Context, string) (eventlog.Position, error) {
	return eventlog.Position{}, nil
}
func (nopProjection) Apply(context.Context, eventlog.Record) error { return nil }
func (nopProjection) Quarantine(context.Context, string, quarantine.Mark) error {
	return nil
}

func TestACommandWhoseOwnerIsGoneAnswersWithinTheCallersDeadline(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	p := newMem()
	// No consumer of p runs anywhere: the partition's owner is gone, as when its process died and
	// the server has not yet pinned the partition to another. A caller allows less than AwaitOwner.
	ctx, cancel := context.WithTimeout(t.Context(), eventlog.AwaitOwner/2)
	defer cancel()
	rec, err := l.Decide(ctx, p, "A", func(context.Context) (*whistlev1.Event, error) { return raised("A"), nil })
	if err != nil {
		t.Fatalf("decide with %s to go and no owner: %v", eventlog.AwaitOwner/2, err)
	}
	if pos, _ := p.Position(t.Context(), "A"); rec == nil || pos.LastSeq != rec.Seq {
		t.Fatalf("the command answered %v with the projection at %d: it must apply its event itself", rec, pos.LastSeq)
	}
}

func TestIssuesListsEachIssueOfAPartitionOnceByItsRaise(t *testing.T) {
	l := openLog(t)
	ctx := t.Context()
	want := map[int][]string{}
	for i := range 40 {
		id := fmt.Sprintf("ISSUE-%02d", i)
		seq, err := l.Append(ctx, raised(id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, acked(id, "water", seq)); err != nil {
			t.Fatal(err)
		}
		want[eventlog.Partition(id)] = append(want[eventlog.Partition(id)], id)
	}
	for p := range eventlog.Partitions {
		got, err := l.Issues(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(want[p])
		if !slices.Equal(got, want[p]) {
			t.Errorf("partition %d: Issues = %v, want %v", p, got, want[p])
		}
	}
}
