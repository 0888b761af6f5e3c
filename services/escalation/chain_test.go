package escalation_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/app"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// chainRosters name water's officer and head and the supervisors of Xinhua street and the city;
// power has no roster, so its officer and head are nobody.
const chainRosters = `
people: [{id: w1}, {id: wh}, {id: sx}, {id: sc}]
rosters:
  - unit: water
    head: wh
    shifts:
      - {name: all, days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00", people: [w1], turn: day, since: 2026-01-05}
supervisors:
  - {area: xinhua, person: sx}
  - {area: city, person: sc}
`

// step is a reminder or a chain step as the stream recorded it, for comparing.
type step struct {
	kind   string // reminded or escalated
	level  uint32
	repeat uint32
	person string
}

// steps returns the reminders and chain steps of the issue's report-in clock, in stream order.
func (h *harness) steps(issueID string) []step {
	var out []step
	for _, ev := range h.events(issueID) {
		if r := ev.GetReminded(); r != nil {
			out = append(out, step{kind: "reminded", person: r.GetPersonId(), level: r.GetPercent()})
		}
		if e := ev.GetEscalated(); e != nil {
			out = append(out, step{kind: "escalated", level: e.GetLevel(), repeat: e.GetRepeat(), person: e.GetPersonId()})
		}
	}
	return out
}

// routeWithChain raises an issue in a Xinhua grid and routes it to unit under a policy with a
// report-in limit of reportIn, a reminder at half of it, and a chain of four levels 300 ms apart:
// the officer at once, the head (twice), the street, the city.
func (h *harness) routeWithChain(issueID, unit string, reportIn time.Duration) {
	h.T.Helper()
	grid := "xinhua-taoyuan-01"
	_, community, street, err := h.Deps.Catalog.Grid(grid)
	if err != nil {
		h.T.Fatal(err)
	}
	gap := durationpb.New(300 * time.Millisecond)
	policy := &whistlev1.SlaPolicy{Name: "test", ReportInWithin: durationpb.New(reportIn), ResolveWithin: durationpb.New(time.Hour), RemindAtPercent: []uint32{50},
		Chain: []*whistlev1.EscalationLevel{
			{Wait: durationpb.New(0), Target: whistlev1.EscalationTarget_ESCALATION_TARGET_DUTY_OFFICER},
			{Wait: gap, Target: whistlev1.EscalationTarget_ESCALATION_TARGET_UNIT_HEAD, Repeat: 1},
			{Wait: gap, Target: whistlev1.EscalationTarget_ESCALATION_TARGET_STREET_SUPERVISOR},
			{Wait: gap, Target: whistlev1.EscalationTarget_ESCALATION_TARGET_CITY_SUPERVISOR},
		}}
	h.append(issueID+".raised", issueID, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{GridId: grid, CommunityId: community.ID, StreetId: street.ID, CategoryId: "water-supply",
			Urgency: whistlev1.Urgency_URGENCY_NORMAL, Text: "a test issue"}}
	})
	routedAt := h.Stored(issueID, "raised").Time
	h.append(issueID+".routed", issueID, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{RuleId: "test", Dispatches: []*whistlev1.Dispatch{{
			DepartmentId: unit, Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, Policy: policy,
			ReportInBy: timestamppb.New(routedAt.Add(reportIn)), ResolveBy: timestamppb.New(routedAt.Add(time.Hour)),
		}}}}
	})
}

// drive keeps waking the timer loops, as time passing would, until done holds.
func (h *harness) drive(done func() error) {
	h.T.Helper()
	wait.For(h.T, 20*time.Second, 20*time.Millisecond, func() error {
		h.Clock.Advance(app.LeaseCheck)
		return done()
	})
}

func TestABreachClimbsItsChainLevelByLevelEachStepAnEventAndAReportInStopsIt(t *testing.T) {
	h := newHarness(t)
	r, err := roster.Parse("rosters.yaml", []byte(chainRosters), h.Deps.Catalog.TimeZone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Deps.Rosters = r
	h.run()
	climbs, stops, nobody := issue(t, 1), issue(t, 2), issue(t, 3)
	h.routeWithChain(climbs, "water", 400*time.Millisecond)
	h.routeWithChain(stops, "water", 400*time.Millisecond)
	h.routeWithChain(nobody, "power", 400*time.Millisecond)

	want := []step{
		{kind: "reminded", level: 50, person: "w1"},
		{kind: "escalated", level: 1, person: "w1"},
		{kind: "escalated", level: 2, person: "wh"},
		{kind: "escalated", level: 2, repeat: 1, person: "wh"},
		{kind: "escalated", level: 3, person: "sx"},
		{kind: "escalated", level: 4, person: "sc"},
	}
	h.drive(func() error {
		if got := h.steps(stops); len(got) < 3 {
			return fmt.Errorf("the second issue took %d steps so far", len(got))
		}
		return nil
	})
	// The second issue's officer reports in once its head has been told: its chain stops there.
	h.acknowledge(stops, "water")
	h.drive(func() error {
		if got := h.steps(climbs); len(got) < len(want) {
			return fmt.Errorf("%d steps so far", len(got))
		}
		if got := h.steps(nobody); len(got) < 3 {
			return fmt.Errorf("the unit without a roster took %d steps so far", len(got))
		}
		return nil
	})
	// Let whatever else the loop would fire come due: the chains are 1.3 s long.
	deadline := time.Now().Add(2 * time.Second)
	h.drive(func() error {
		if time.Now().Before(deadline) {
			return fmt.Errorf("waiting")
		}
		return nil
	})
	if got := h.steps(climbs); !slices.Equal(got, want) {
		t.Errorf("the chain recorded %+v, want %+v", got, want)
	}
	if got := h.steps(stops); len(got) > 4 || got[len(got)-1].level > 2 {
		t.Errorf("after the report-in the chain went on: %+v", got)
	}
	// power has no roster: the reminder tells nobody, the officer's and head's levels are passed
	// over at once to the street, which is told when the officer would have been.
	var nobodySteps []*whistlev1.BreachEscalated
	for _, ev := range h.events(nobody) {
		if e := ev.GetEscalated(); e != nil {
			nobodySteps = append(nobodySteps, e)
		}
	}
	if len(nobodySteps) != 2 || nobodySteps[0].GetLevel() != 3 || !slices.Equal(nobodySteps[0].GetSkipped(), []uint32{1, 2}) ||
		nobodySteps[0].GetPersonId() != "sx" || nobodySteps[0].GetAreaId() != "xinhua" || nobodySteps[1].GetPersonId() != "sc" {
		t.Errorf("the unit without a roster escalated %v", nobodySteps)
	}
	// Every step is in the stream's order and after its due time: the escalation's fold, which
	// refuses any other, applied them all, and the breach shows the level reached.
	list, err := h.client(h.run(), citySupervisor).ListBreaches(context.Background(), &whistlev1.ListBreachesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	levels := map[string]int32{}
	for _, b := range list.GetBreaches() {
		levels[b.GetIssueId()] = b.GetLevel()
	}
	if levels[climbs] != 4 || levels[stops] != 2 || levels[nobody] != 4 {
		t.Errorf("the breaches list levels %v, want 4, 2 and 4", levels)
	}
	for _, id := range []string{climbs, stops, nobody} {
		if st, err := store.New(h.Deps.Redis, nil, nil).Issue(context.Background(), id); err != nil || st.Quarantine != nil {
			t.Errorf("%s: the escalation's own fold refused a step it recorded: %+v %v", id, st.Quarantine, err)
		}
	}
}

func TestABreachWatchShowsTheBreachAgainAtEachLevelItsChainReaches(t *testing.T) {
	h := newHarness(t)
	r, err := roster.Parse("rosters.yaml", []byte(chainRosters), h.Deps.Catalog.TimeZone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Deps.Rosters = r
	in := h.run()
	watch := h.watchBreaches(in, citySupervisor, &whistlev1.WatchBreachesRequest{})
	id := issue(t, 1)
	h.routeWithChain(id, "water", 400*time.Millisecond)

	// The watch is read on its own, while the loop is driven: each message is the breach as it
	// stood when the watch read it, so it names a level at least as high as the step announced.
	levels := make(chan int32, 16)
	go func() {
		defer close(levels)
		for {
			msg, err := watch.stream.Recv()
			if err != nil {
				return
			}
			if b := msg.GetBreach(); b.GetIssueId() == id {
				levels <- b.GetLevel()
			}
		}
	}()
	var got []int32
	h.drive(func() error {
		for {
			select {
			case l := <-levels:
				got = append(got, l)
				continue
			default:
			}
			break
		}
		if len(got) == 0 || got[len(got)-1] < 4 {
			return fmt.Errorf("the watch showed levels %v so far", got)
		}
		return nil
	})
	if !slices.IsSorted(got) || len(got) < 3 {
		t.Errorf("the watch showed levels %v: want the breach, then again as its chain climbed to 4", got)
	}
}
