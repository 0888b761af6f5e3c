package eventlog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestDecideAllStoresEachDecisionOnceAndSendsOneThatLostARaceThroughDecide(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	p := newMem()
	for _, issue := range []string{"A", "B", "C", "D"} {
		if _, err := l.Append(ctx, raised(issue)); err != nil {
			t.Fatal(err)
		}
		if err := l.Catchup(ctx, p, issue); err != nil {
			t.Fatal(err)
		}
	}
	// Another writer moves B on behind the projection's back: B's decision is taken on a stale state.
	pos, _ := p.Position(ctx, "B")
	other, err := l.Append(ctx, acked("B", "power", pos.LastSeq))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Quarantine(ctx, "D", quarantine.Mark{Seq: 4, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	ack := func(issue string) eventlog.Decision {
		return eventlog.Decision{IssueID: issue, Decide: func(ctx context.Context) (*whistlev1.Event, error) {
			calls[issue]++
			if issue == "C" {
				return nil, nil // C owes nothing
			}
			pos, err := p.Position(ctx, issue)
			return acked(issue, "water", pos.LastSeq), err
		}}
	}
	out := l.DecideAll(ctx, p, []eventlog.Decision{ack("B"), ack("A"), ack("C"), ack("D"), ack("A")})

	stored := func(issue string) []eventlog.Record {
		recs, err := l.Read(ctx, issue, 0)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	a := stored("A")
	if len(a) != 2 || out[1].Err != nil || out[1].Record == nil || out[1].Record.Seq != a[1].Seq || !out[1].Record.Time.IsZero() {
		t.Fatalf("A's decision = %+v; the stream holds %d events of A, want its raise and one acknowledgement at the record's sequence, with no time as under Unawaited", out[1], len(a))
	}
	b := stored("B")
	if out[0].Err != nil || len(b) != 3 || b[1].Seq != other || out[0].Record == nil || out[0].Record.Seq != b[2].Seq ||
		b[2].Event.GetPrevSeq() != other || calls["B"] != 2 {
		t.Fatalf("B's decision = %+v after %d calls; the stream holds %d events of B; want the other writer's at %d and then the decision's, decided again on it",
			out[0], calls["B"], len(b), other)
	}
	if out[2] != (eventlog.Decided{}) || len(stored("C")) != 1 {
		t.Fatalf("C's decision = %+v; want nothing decided and nothing stored", out[2])
	}
	if !errors.Is(out[3].Err, eventlog.ErrQuarantined) || calls["D"] != 0 || len(stored("D")) != 1 {
		t.Fatalf("D's decision = %+v after %d calls; want ErrQuarantined without deciding", out[3], calls["D"])
	}
	if out[4].Err == nil || out[4].Record != nil || calls["A"] != 1 {
		t.Fatalf("A's second decision = %+v, A decided %d times; want it refused, A decided once", out[4], calls["A"])
	}
}
