package intake_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/store"
)

// store returns a second adapter on the service's Redis, to look at and drive the view directly.
func (e *env) store() *store.Store { return store.New(e.Deps.Redis) }

// snapshot reads every key of the view with its value, so two states can be compared whole.
func (e *env) snapshot() map[string]string {
	e.T.Helper()
	ctx := context.Background()
	keys, err := e.Deps.Redis.Keys(ctx, store.Prefix+"*").Result()
	if err != nil {
		e.T.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		switch typ := e.Deps.Redis.Type(ctx, k).Val(); typ {
		case "string":
			out[k] = e.Deps.Redis.Get(ctx, k).Val()
		case "zset":
			out[k] = fmt.Sprint(e.Deps.Redis.ZRangeWithScores(ctx, k, 0, -1).Val())
		default:
			out[k] = typ
		}
	}
	return out
}

func TestApplyingTheSameRecordTwiceChangesNothing(t *testing.T) {
	e := start(t)
	e.stop() // drive the view by hand, with nothing else applying
	ctx := context.Background()
	st := e.store()
	id := "K7M3-QX9A"
	raised := eventlog.Record{Seq: 4, Time: e.Clock.Now(), Event: &whistlev1.Event{
		Id: id + ".raised", IssueId: id, OccurredAt: timestamppb.New(e.Clock.Now()), Actor: person(taoyuanWorker),
		Payload: &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{RequestId: "r", GridId: "xinhua-taoyuan-01",
			CommunityId: "xinhua-taoyuan", StreetId: "xinhua", CategoryId: "noise", Text: "Loud"}},
	}}
	routed := eventlog.Record{Seq: 9, Time: e.Clock.Now(), Event: &whistlev1.Event{
		Id: id + ".routed", IssueId: id, PrevSeq: 4, OccurredAt: timestamppb.New(e.Clock.Now()), Actor: service("routing"),
		Payload: &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{RuleId: "noise", Dispatches: []*whistlev1.Dispatch{
			{DepartmentId: "water", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD}}}},
	}}
	gap := eventlog.Record{Seq: 12, Time: e.Clock.Now(), Event: &whistlev1.Event{
		Id: id + ".resolved.power", IssueId: id, PrevSeq: 11, OccurredAt: timestamppb.New(e.Clock.Now()), Actor: person(powerOfficer),
		Payload: &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "power"}},
	}}

	for _, rec := range []eventlog.Record{raised, routed} {
		if err := st.Apply(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	once := e.snapshot()
	for _, rec := range []eventlog.Record{raised, routed} {
		if err := st.Apply(ctx, rec); err != nil {
			t.Fatalf("applying seq %d again: %v", rec.Seq, err)
		}
	}
	if err := st.Apply(ctx, gap); !errors.Is(err, eventlog.ErrGap) {
		t.Fatalf("a record after a missing one: got %v, want ErrGap", err)
	}
	if again := e.snapshot(); !maps.Equal(once, again) {
		t.Fatalf("state changed:\nonce  %v\nagain %v", once, again)
	}
	is, err := st.Get(ctx, id)
	if err != nil || len(is.Timeline) != 2 || is.LastSeq != 9 {
		t.Fatalf("view: %+v, %v", is, err)
	}
}
