package scorecard_test

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/scorecard"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// t0 is when the histories of these tests begin.
var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// history builds one issue's records, each stored at its offset from t0.
type history struct {
	id   string
	recs []eventlog.Record
}

func (h *history) add(after time.Duration, payload func(*whistlev1.Event)) {
	ev := &whistlev1.Event{IssueId: h.id}
	payload(ev)
	h.recs = append(h.recs, eventlog.Record{Seq: uint64(len(h.recs) + 1), Time: t0.Add(after), Event: ev})
}

func at(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

// fold applies the history to a fresh issue and returns it.
func (h *history) fold() *scorecard.Issue {
	is := &scorecard.Issue{}
	for _, rec := range h.recs {
		is.Apply(rec)
	}
	return is
}

func raised(ev *whistlev1.Event) {
	ev.Payload = &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{GridId: "xinhua-taoyuan-01", CommunityId: "xinhua-taoyuan", StreetId: "xinhua"}}
}

func routed(withdrawn []string, ds ...*whistlev1.Dispatch) func(*whistlev1.Event) {
	return func(ev *whistlev1.Event) {
		r := &whistlev1.IssueRouted{Dispatches: ds}
		for _, u := range withdrawn {
			r.Withdrawn = append(r.Withdrawn, &whistlev1.Withdrawal{UnitId: u})
		}
		ev.Payload = &whistlev1.Event_Routed{Routed: r}
	}
}

func dispatch(dept, unit string, role whistlev1.AssignmentRole, working bool) *whistlev1.Dispatch {
	return &whistlev1.Dispatch{DepartmentId: dept, UnitId: unit, Role: role, ReportInBy: at(time.Hour), ResolveBy: at(24 * time.Hour),
		Policy: &whistlev1.SlaPolicy{WorkingTime: working}}
}

const (
	lead      = whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD
	assisting = whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING
	reportIn  = whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN
	resolve   = whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE
)

func TestAPartsLifeIsFoldedFromItsEventsAndAReopeningKeepsItsFirstReportIn(t *testing.T) {
	h := &history{id: "LIFE-0001"}
	h.add(0, raised)
	h.add(time.Minute, routed(nil, dispatch("water", "", lead, true), dispatch("urban-management", "urban-management-xinhua", assisting, false)))
	h.add(2*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Breached{Breached: &whistlev1.DeadlineBreached{DepartmentId: "water", Kind: reportIn, Deadline: at(time.Hour)}}
	})
	h.add(2*time.Hour+time.Minute, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Escalated{Escalated: &whistlev1.BreachEscalated{DepartmentId: "water", Kind: reportIn, Deadline: at(time.Hour), Level: 2,
			PersonId: "water.head"}}
	})
	h.add(2*time.Hour+2*time.Minute, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Escalated{Escalated: &whistlev1.BreachEscalated{DepartmentId: "water", Kind: reportIn, Deadline: at(time.Hour), Level: 1,
			PersonId: "water.1"}}
	})
	h.add(2*time.Hour+3*time.Minute, func(ev *whistlev1.Event) { // nobody left to tell: the level is not reached
		ev.Payload = &whistlev1.Event_Escalated{Escalated: &whistlev1.BreachEscalated{DepartmentId: "water", Kind: reportIn, Deadline: at(time.Hour), Level: 3}}
	})
	h.add(3*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water"}}
	})
	h.add(4*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Urged{Urged: &whistlev1.IssueUrged{DepartmentId: "water", UnitId: "water"}}
	})
	h.add(5*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_ExtensionRequested{ExtensionRequested: &whistlev1.ExtensionRequested{DepartmentId: "water", Kind: resolve}}
	})
	h.add(6*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_ExtensionDecided{ExtensionDecided: &whistlev1.ExtensionDecided{DepartmentId: "water", Kind: resolve, Approved: true,
			Deadline: at(24 * time.Hour), Granted: at(48 * time.Hour)}} // stored before the deadline it moves
	})
	h.add(7*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Returned{Returned: &whistlev1.AssignmentReturned{DepartmentId: "urban-management", UnitId: "urban-management-xinhua"}}
	})
	h.add(8*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water"}}
	})
	h.add(9*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Verified{Verified: &whistlev1.IssueVerified{Reopened: &whistlev1.Dispatch{DepartmentId: "water", UnitId: "water"}}}
	})
	h.add(10*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water"}}
	})
	// The unit returned its part and is summoned again: a part of its own, dispatched by the
	// fifteenth event.
	h.add(11*time.Hour, routed(nil, dispatch("urban-management", "urban-management-xinhua", assisting, false)))
	h.add(12*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water"}}
	})
	h.add(13*time.Hour, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Rated{Rated: &whistlev1.IssueRated{Score: 5}}
	})

	is := h.fold()
	water := &scorecard.Part{IssueID: h.id, Seq: 2, UnitID: "water", DepartmentID: "water", StreetID: "xinhua", GridID: "xinhua-taoyuan-01",
		Lead: true, WorkingTime: true, DispatchedAt: t0.Add(time.Minute), AcknowledgedAt: t0.Add(3 * time.Hour),
		ResolvedAt: t0.Add(12 * time.Hour), Round: 1, Urges: 1, ExtensionsRequested: 1, ExtensionsApproved: 1, Rating: 5,
		Breaches: []scorecard.Breach{{Kind: assignment.ReportIn, Deadline: t0.Add(time.Hour), Level: 2}}}
	returned := &scorecard.Part{IssueID: h.id, Seq: 2, UnitID: "urban-management-xinhua", DepartmentID: "urban-management", StreetID: "xinhua",
		GridID: "xinhua-taoyuan-01", DispatchedAt: t0.Add(time.Minute), ReturnedAt: t0.Add(7 * time.Hour)}
	again := &scorecard.Part{IssueID: h.id, Seq: 15, UnitID: "urban-management-xinhua", DepartmentID: "urban-management", StreetID: "xinhua",
		GridID: "xinhua-taoyuan-01", DispatchedAt: t0.Add(11 * time.Hour)}
	want := &scorecard.Issue{StreetID: "xinhua", GridID: "xinhua-taoyuan-01", RaisedAt: t0, Parts: []*scorecard.Part{water, returned, again}}
	if !reflect.DeepEqual(is, want) {
		t.Errorf("the folded issue is\n%+v\nwant\n%+v", is, want)
		for i := range min(len(is.Parts), len(want.Parts)) {
			if !reflect.DeepEqual(is.Parts[i], want.Parts[i]) {
				t.Errorf("part %d is\n%+v\nwant\n%+v", i, is.Parts[i], want.Parts[i])
			}
		}
	}
	if got := water.Name(); got != "LIFE-0001|water|2" {
		t.Errorf("the part's name is %q", got)
	}
}

func TestAWithdrawnPartLeavesTheScorecardsAndTheDesksHoldingIsNoPart(t *testing.T) {
	h := &history{id: "DESK-0001"}
	h.add(0, raised)
	h.add(time.Minute, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_NeedsDispatch{NeedsDispatch: &whistlev1.IssueNeedsDispatch{
			Desk: &whistlev1.Dispatch{DepartmentId: "dispatch-desk", UnitId: "dispatch-desk", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_DESK}}}
	})
	h.add(2*time.Minute, routed([]string{"dispatch-desk"}, dispatch("water", "", lead, false)))
	h.add(3*time.Minute, routed([]string{"water"}, dispatch("power", "", lead, false)))
	is := h.fold()
	if len(is.Parts) != 2 || is.Parts[0].UnitID != "water" || !is.Parts[0].Withdrawn || is.Parts[1].UnitID != "power" || is.Parts[1].Withdrawn {
		t.Fatalf("parts after a desk, a dispatch and a re-assignment: %+v", is.Parts)
	}
	c := is.Apply(eventlog.Record{Seq: 5, Time: t0.Add(4 * time.Minute), Event: &whistlev1.Event{IssueId: h.id,
		Payload: &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{Withdrawn: []*whistlev1.Withdrawal{{UnitId: "power"}}}}}})
	if len(c.Withdrawn) != 1 || c.Withdrawn[0].UnitID != "power" || len(c.Dispatched) != 0 {
		t.Errorf("withdrawing power changed %+v", c)
	}
}

func TestARatingGoesToTheLeadStandingWhenItWasStored(t *testing.T) {
	h := &history{id: "RATE-0001"}
	h.add(0, raised)
	h.add(time.Minute, routed(nil, dispatch("water", "", lead, false), dispatch("power", "", assisting, false)))
	h.add(2*time.Minute, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Returned{Returned: &whistlev1.AssignmentReturned{DepartmentId: "water"}}
	})
	h.add(3*time.Minute, routed(nil, dispatch("gas", "", lead, false)))
	h.add(4*time.Minute, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Rated{Rated: &whistlev1.IssueRated{Score: 2}}
	})
	h.add(5*time.Minute, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Rated{Rated: &whistlev1.IssueRated{Score: 4}}
	})
	is := h.fold()
	ratings := map[string]int{}
	for _, p := range is.Parts {
		ratings[p.UnitID] = p.Rating
	}
	if want := map[string]int{"water": 0, "power": 0, "gas": 4}; !reflect.DeepEqual(ratings, want) {
		t.Errorf("ratings by unit: %v, want %v (the returned lead and the assisting part rate nothing; the latest rating stands)", ratings, want)
	}
}

// part is a part dispatched at t0 that took ack to report in and res to resolve (0: did not).
func part(ack, res time.Duration, breached ...assignment.DeadlineKind) scorecard.Part {
	p := scorecard.Part{DispatchedAt: t0}
	if ack > 0 {
		p.AcknowledgedAt = t0.Add(ack)
	}
	if res > 0 {
		p.ResolvedAt = t0.Add(res)
	}
	for i, k := range breached {
		p.Breaches = append(p.Breaches, scorecard.Breach{Kind: k, Level: i})
	}
	return p
}

func TestTallyCountsOnTimeByTheBreachesAndMeasuresByNearestRank(t *testing.T) {
	parts := []scorecard.Part{
		part(10*time.Minute, 2*time.Hour),
		part(20*time.Minute, 3*time.Hour),
		part(30*time.Minute, 4*time.Hour, assignment.Resolve),
		part(2*time.Hour, 5*time.Hour, assignment.ReportIn, assignment.Resolve),
		part(0, 0, assignment.ReportIn),
	}
	parts[0].Rating, parts[1].Rating, parts[3].Rating = 5, 4, 2
	parts[2].Urges, parts[2].ExtensionsRequested, parts[2].ExtensionsDenied = 2, 1, 1
	parts[4].ReturnedAt = t0.Add(time.Hour)
	c := scorecard.Tally(parts, nil)
	// Five parts: four reported in, three of them without a report-in breach (the fourth was
	// breached); four resolved, two without a resolve breach; one returned. Times to acknowledge
	// 10m 20m 30m 2h: the median is the 2nd (20m), the 90th percentile the 4th (2h); to resolve
	// 2h 3h 4h 5h likewise 3h and 5h. Breaches: level 0 three (each part's first), level 1 one.
	want := scorecard.Card{Dispatched: 5, ReportedIn: 4, ReportedInOnTime: 3, Resolved: 4, ResolvedOnTime: 2, Returns: 1,
		Ratings: 3, Satisfied: 2, Breaches: 4, ByLevel: map[int]int{0: 3, 1: 1}, Urges: 2, ExtensionsRequested: 1, ExtensionsDenied: 1,
		TimeToAcknowledge: scorecard.Spread{Median: 20 * time.Minute, P90: 2 * time.Hour, N: 4},
		TimeToResolve:     scorecard.Spread{Median: 3 * time.Hour, P90: 5 * time.Hour, N: 4},
		SmallSample:       true}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("tally\n%+v\nwant\n%+v", c, want)
	}
	if r := c.ResponseRate(); r != (scorecard.Rate{Num: 4, Den: 5}) || r.Value() != 0.8 {
		t.Errorf("response rate %+v (%v)", r, r.Value())
	}
	if r := c.SatisfactionRate(); r != (scorecard.Rate{Num: 2, Den: 3}) {
		t.Errorf("satisfaction rate %+v", r)
	}
	if v := scorecard.Tally(nil, nil).ResolutionRate().Value(); v != 0 {
		t.Errorf("the rate of nothing is %v, want 0", v)
	}
}

func TestAPartWhosePolicyCountsWorkingTimeIsMeasuredByTheCalendarPluggedIn(t *testing.T) {
	// A calendar that counts half of every span, standing in for the working calendar.
	half := func(a, b time.Time) time.Duration { return b.Sub(a) / 2 }
	working := part(4*time.Hour, 10*time.Hour)
	working.WorkingTime = true
	calendar := part(2*time.Hour, 6*time.Hour)
	c := scorecard.Tally([]scorecard.Part{working, calendar}, half)
	// The working part took 2h and 5h of working time; the calendar one 2h and 6h.
	if c.TimeToAcknowledge != (scorecard.Spread{Median: 2 * time.Hour, P90: 2 * time.Hour, N: 2}) ||
		c.TimeToResolve != (scorecard.Spread{Median: 5 * time.Hour, P90: 6 * time.Hour, N: 2}) {
		t.Errorf("times %+v %+v", c.TimeToAcknowledge, c.TimeToResolve)
	}
	if c := scorecard.Tally([]scorecard.Part{working}, nil); c.TimeToResolve.Median != 10*time.Hour {
		t.Errorf("without a calendar a working-time part measures %s, want calendar time, 10h", c.TimeToResolve.Median)
	}
}

func TestPercentilesAreTheNearestRank(t *testing.T) {
	for _, tc := range []struct {
		n           int
		median, p90 time.Duration
	}{{1, 1, 1}, {2, 1, 2}, {3, 2, 3}, {10, 5, 9}, {11, 6, 10}, {20, 10, 18}, {21, 11, 19}} {
		var parts []scorecard.Part
		for i := range tc.n {
			parts = append(parts, part(time.Duration(tc.n-i)*time.Minute, 0))
		}
		got := scorecard.Tally(parts, nil).TimeToAcknowledge
		if got.Median != tc.median*time.Minute || got.P90 != tc.p90*time.Minute {
			t.Errorf("of 1..%d minutes the median is %s and the 90th percentile %s; want %dm and %dm", tc.n, got.Median, got.P90, tc.median, tc.p90)
		}
	}
}

// card is a large card with the given on-time resolutions, resolutions and report-ins of n.
func card(id string, n, onTime, resolved, reported int) scorecard.Card {
	return scorecard.Card{ID: id, Dispatched: n, ResolvedOnTime: onTime, Resolved: resolved, ReportedIn: reported, SmallSample: n < scorecard.MinSample}
}

func TestRankingPutsSmallSamplesLastUnrankedAndEqualFiguresShareAPlace(t *testing.T) {
	cards := []scorecard.Card{
		card("small-best", 19, 19, 19, 19),
		card("b", 20, 10, 18, 20),
		card("a", 40, 20, 36, 40), // the same rates as b: they share a place, a listed first
		card("c", 20, 10, 18, 19),
		card("d", 30, 27, 27, 30),
		card("empty", 0, 0, 0, 0),
		card("e", 25, 10, 24, 25),
	}
	scorecard.Rank(cards)
	var got []string
	var ranks []int
	for _, c := range cards {
		got, ranks = append(got, c.ID), append(ranks, c.Rank)
	}
	// d 27/30 = 90 % on time; then a, b at 50 % with 90 % resolved and 100 % reported; c at 50 %
	// and 90 % but 95 % reported; e 40 %. Then the small samples by id.
	if want := []string{"d", "a", "b", "c", "e", "empty", "small-best"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if want := []int{1, 2, 2, 4, 5, 0, 0}; !reflect.DeepEqual(ranks, want) {
		t.Errorf("ranks %v, want %v", ranks, want)
	}
}
