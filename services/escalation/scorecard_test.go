package escalation_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/app"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/scorecard"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// scored is a history of issues applied straight to the store, each event stored at a time the
// test gives, so that every duration a scorecard shows is known to the millisecond.
type scored struct {
	t    *testing.T
	t0   time.Time
	seq  uint64
	prev map[string]uint64
	recs []eventlog.Record
}

// add appends an event of the issue stored d after t0.
func (s *scored) add(issueID string, d time.Duration, payload func(*whistlev1.Event)) {
	ev := &whistlev1.Event{Id: fmt.Sprintf("%s.%d", issueID, s.seq+1), IssueId: issueID, PrevSeq: s.prev[issueID]}
	payload(ev)
	s.seq++
	s.prev[issueID] = s.seq
	s.recs = append(s.recs, eventlog.Record{Seq: s.seq, Time: s.t0.Add(d), Event: ev})
}

// lifecycle adds one issue raised in grid at d and routed a minute later to unit of dept (lead)
// with the policy's working time as given; ack and res, when not zero, report in and resolve
// that long after the dispatch, and breached names the deadlines breached on the way.
func (s *scored) lifecycle(issueID, grid, dept, unit string, d time.Duration, working bool, ack, res time.Duration, breached ...whistlev1.DeadlineKind) {
	_, community, street, err := catalogGrid(grid)
	if err != nil {
		s.t.Fatal(err)
	}
	s.add(issueID, d, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{GridId: grid, CommunityId: community, StreetId: street, CategoryId: "water-supply"}}
	})
	dispatched := d + time.Minute
	s.add(issueID, dispatched, func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{Dispatches: []*whistlev1.Dispatch{{
			DepartmentId: dept, UnitId: unit, Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, Policy: &whistlev1.SlaPolicy{WorkingTime: working},
			ReportInBy: timestamppb.New(s.t0.Add(dispatched + time.Hour)), ResolveBy: timestamppb.New(s.t0.Add(dispatched + 48*time.Hour)),
		}}}}
	})
	for _, k := range breached {
		by := map[whistlev1.DeadlineKind]time.Duration{whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN: time.Hour, whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE: 48 * time.Hour}[k]
		s.add(issueID, dispatched+by+time.Second, func(ev *whistlev1.Event) {
			ev.Payload = &whistlev1.Event_Breached{Breached: &whistlev1.DeadlineBreached{DepartmentId: dept, UnitId: unit, Kind: k,
				Deadline: timestamppb.New(s.t0.Add(dispatched + by))}}
		})
	}
	if ack > 0 {
		s.add(issueID, dispatched+ack, func(ev *whistlev1.Event) {
			ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: dept, UnitId: unit}}
		})
	}
	if res > 0 {
		s.add(issueID, dispatched+res, func(ev *whistlev1.Event) {
			ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: dept, UnitId: unit}}
		})
	}
}

// catalogGrid finds a grid of the sample city with its community and street ids.
func catalogGrid(grid string) (gridID, community, street string, err error) {
	cat, err := catalog.Sample()
	if err != nil {
		return "", "", "", err
	}
	g, c, st, err := cat.Grid(grid)
	return g.ID, c.ID, st.ID, err
}

func TestScorecardsCountThePartsDispatchedInThePeriodExactlyOnOneServerAndOnACluster(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range redisses {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			rdb := r.connect(t)
			s := store.New(rdb, nil, nil)
			h := &scored{t: t, t0: time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC), prev: map[string]uint64{}}
			// Twenty-four issues of the water unit in Xinhua, raised one hour apart from 09:00 and
			// dispatched a minute later (the period below starts at 09:01 and ends before the 25th),
			// with an hour to report in and 48 to resolve. The i-th reports in after i+1 minutes,
			// except every sixth (i = 0, 6, 12, 18), which breached its report-in deadline and
			// reported in after 2h and i minutes; it resolves after i+3 hours, except the last,
			// which breached its resolve deadline unresolved. The first twelve count working time,
			// measured here as half the calendar time.
			reportIn, resolve := whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN, whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE
			for i := range 24 {
				var breached []whistlev1.DeadlineKind
				ack, res := time.Duration(i+1)*time.Minute, time.Duration(i+3)*time.Hour
				if i%6 == 0 {
					ack, breached = 2*time.Hour+time.Duration(i)*time.Minute, append(breached, reportIn)
				}
				if i == 23 {
					res, breached = 0, append(breached, resolve)
				}
				h.lifecycle(fmt.Sprintf("SCORE-%04d", i), "xinhua-taoyuan-01", "water", "", time.Duration(i)*time.Hour, i < 12, ack, res, breached...)
			}
			// Outside the period: one dispatched at its end, one a millisecond before its start.
			h.lifecycle("SCORE-LATE", "xinhua-taoyuan-02", "water", "", 24*time.Hour, false, time.Minute, time.Hour)
			h.lifecycle("SCORE-EARLY", "xinhua-taoyuan-02", "water", "", -time.Millisecond, false, time.Minute, time.Hour)
			// In the period, in Dongfeng: a unit of another street.
			h.lifecycle("SCORE-DONG", "dongfeng-jinqiao-01", "urban-management", "urban-management-dongfeng", 2*time.Hour, false, 3*time.Minute, 0)
			errs, err := s.ApplyBatch(t.Context(), h.recs)
			if err != nil {
				t.Fatal(err)
			}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("apply %d: %v", h.recs[i].Seq, err)
				}
			}
			half := func(a, b time.Time) time.Duration { return b.Sub(a) / 2 }
			q := app.NewScorecards(scorecard.NewReader(rdb, s.ScorecardFacts), cat, half)
			from, until := h.t0.Add(time.Minute), h.t0.Add(24*time.Hour+time.Minute)

			cards, err := q.Get(t.Context(), app.ScorecardQuery{Kind: scorecard.Department, ID: "water", From: from, Until: until})
			if err != nil || len(cards) != 1 {
				t.Fatalf("water's scorecard: %v %v", cards, err)
			}
			c := cards[0]
			// 24 parts; all reported in, 20 without a report-in breach; 23 resolved, all without
			// a resolve breach; 5 breaches, none escalated. Times to acknowledge, sorted: halved
			// for i < 12, 1m 1.5m 2m 2.5m 3m 4m 4.5m 5m 5.5m 6m (i = 1..5, 7..11), then 14m..18m
			// and 20m..24m (i = 13..17, 19..23), then 1h (i = 0), 1h3m (6), 2h12m (12), 2h18m
			// (18): the 12th (median) is 15m, the 22nd (⌈0.9·24⌉, the 90th percentile) 1h3m.
			// Times to resolve: halved for i < 12, 1.5h..7h by half hours (12), then 15h..25h
			// (11): the 12th is 7h, the 21st (⌈0.9·23⌉) 23h.
			want := scorecard.Card{Kind: scorecard.Department, ID: "water", Name: "Water Affairs Bureau",
				Dispatched: 24, ReportedIn: 24, ReportedInOnTime: 20, Resolved: 23, ResolvedOnTime: 23,
				TimeToAcknowledge: scorecard.Spread{Median: 15 * time.Minute, P90: time.Hour + 3*time.Minute, N: 24},
				TimeToResolve:     scorecard.Spread{Median: 7 * time.Hour, P90: 23 * time.Hour, N: 23},
				Breaches:          5, ByLevel: map[int]int{0: 5}, Rank: 1}
			if fmt.Sprint(c) != fmt.Sprint(want) {
				t.Errorf("water's scorecard\n%+v\nwant\n%+v", c, want)
			}

			streets, err := q.Get(t.Context(), app.ScorecardQuery{Kind: scorecard.Street, From: from, Until: until})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range streets {
				got = append(got, fmt.Sprintf("%s:%d parts,%d whistles,rank %d", c.ID, c.Dispatched, c.Whistles, c.Rank))
			}
			// Xinhua: the 24 parts; its whistles are their raises from 10:00 (the first, at 09:00,
			// lies before the period) and SCORE-LATE's at 09:00 the next day, in the period though
			// its dispatch is not. Dongfeng: one of each, a small sample.
			if want := "xinhua:24 parts,24 whistles,rank 1 dongfeng:1 parts,1 whistles,rank 0"; strings.Join(got, " ") != want {
				t.Errorf("streets: %s, want %s", strings.Join(got, " "), want)
			}

			limited, err := q.Get(t.Context(), app.ScorecardQuery{Kind: scorecard.Unit, Area: "dongfeng", From: from, Until: until})
			if err != nil || len(limited) != 1 || limited[0].ID != "urban-management-dongfeng" || limited[0].DepartmentID != "urban-management" ||
				limited[0].Dispatched != 1 || limited[0].TimeToAcknowledge.Median != 3*time.Minute || !limited[0].SmallSample {
				t.Errorf("the units' scorecards limited to Dongfeng: %+v %v", limited, err)
			}
			none, err := q.Get(t.Context(), app.ScorecardQuery{Kind: scorecard.Unit, ID: "power", From: from, Until: until})
			if err != nil || len(none) != 1 || none[0].Dispatched != 0 || none[0].Name != "Power Supply Company" || !none[0].SmallSample {
				t.Errorf("a unit with no part in the period: %+v %v", none, err)
			}
		})
	}
}

// scorecards asks for scorecards as the client's caller.
func scorecards(c whistlev1.EscalationServiceClient, kind whistlev1.ScorecardKind, id string, from, until time.Time) (*whistlev1.GetScorecardsResponse, error) {
	return c.GetScorecards(context.Background(), &whistlev1.GetScorecardsRequest{Kind: kind, Id: id,
		From: timestamppb.New(from), Until: timestamppb.New(until)})
}

func TestScorecardRefusalsNameTheFieldOrTheScopeWithThePreciseCode(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	from, until := h.t0.Add(-time.Hour), h.t0.Add(time.Hour)
	dept, unit, street := whistlev1.ScorecardKind_SCORECARD_KIND_DEPARTMENT, whistlev1.ScorecardKind_SCORECARD_KIND_UNIT, whistlev1.ScorecardKind_SCORECARD_KIND_STREET
	sup := h.client(in, citySupervisor)
	for _, tc := range []struct {
		name  string
		req   *whistlev1.GetScorecardsRequest
		field string
	}{
		{"no kind", &whistlev1.GetScorecardsRequest{From: timestamppb.New(from), Until: timestamppb.New(until)}, "kind: "},
		{"an unknown kind", &whistlev1.GetScorecardsRequest{Kind: 9, From: timestamppb.New(from), Until: timestamppb.New(until)}, "kind: "},
		{"no from", &whistlev1.GetScorecardsRequest{Kind: dept, Until: timestamppb.New(until)}, "from: is required"},
		{"no until", &whistlev1.GetScorecardsRequest{Kind: dept, From: timestamppb.New(from)}, "until: is required"},
		{"an invalid from", &whistlev1.GetScorecardsRequest{Kind: dept, From: &timestamppb.Timestamp{Nanos: -1}, Until: timestamppb.New(until)}, "from: "},
		{"until before from", &whistlev1.GetScorecardsRequest{Kind: dept, From: timestamppb.New(until), Until: timestamppb.New(from)}, "until: must be after from"},
		{"until at from", &whistlev1.GetScorecardsRequest{Kind: dept, From: timestamppb.New(from), Until: timestamppb.New(from)}, "until: must be after from"},
		{"a period over a year", &whistlev1.GetScorecardsRequest{Kind: dept, From: timestamppb.New(from),
			Until: timestamppb.New(from.Add(scorecard.MaxPeriod + time.Millisecond))}, "until: a period is at most 366 days"},
		{"an unknown department", &whistlev1.GetScorecardsRequest{Kind: dept, Id: "bakery", From: timestamppb.New(from), Until: timestamppb.New(until)}, `id: no department "bakery"`},
		{"a unit as a department", &whistlev1.GetScorecardsRequest{Kind: dept, Id: "urban-management-xinhua", From: timestamppb.New(from), Until: timestamppb.New(until)}, "id: no department"},
		{"a community as a street", &whistlev1.GetScorecardsRequest{Kind: street, Id: "xinhua-taoyuan", From: timestamppb.New(from), Until: timestamppb.New(until)}, "id: no street"},
		{"an id too long", &whistlev1.GetScorecardsRequest{Kind: unit, Id: strings.Repeat("u", 65), From: timestamppb.New(from), Until: timestamppb.New(until)}, "id: must be at most 64"},
		{"an id not UTF-8", &whistlev1.GetScorecardsRequest{Kind: unit, Id: "\xff", From: timestamppb.New(from), Until: timestamppb.New(until)}, "id: "},
	} {
		_, err := sup.GetScorecards(context.Background(), tc.req)
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument beginning %q", tc.name, err, tc.field)
		}
	}
	if _, err := scorecards(sup, dept, "", from, from.Add(scorecard.MaxPeriod)); err != nil {
		t.Errorf("a period of exactly 366 days: %v", err)
	}

	xinhua := authx.Principal{Subject: "sup-xinhua", Role: authx.RoleSupervisor, Scope: "xinhua"}
	community := authx.Principal{Subject: "sup-taoyuan", Role: authx.RoleSupervisor, Scope: "xinhua-taoyuan"}
	officer := authx.Principal{Subject: "duty-um", Role: authx.RoleOfficer, Scope: "urban-management-xinhua"}
	for _, tc := range []struct {
		name string
		p    authx.Principal
		kind whistlev1.ScorecardKind
		id   string
		code codes.Code
	}{
		{"a street's supervisor, another street", xinhua, street, "dongfeng", codes.PermissionDenied},
		{"a community's supervisor, its street", community, street, "xinhua", codes.PermissionDenied},
		{"a community's supervisor, every street", community, street, "", codes.PermissionDenied},
		{"an officer, another unit", officer, unit, "urban-management-dongfeng", codes.PermissionDenied},
		{"an officer, another department", officer, dept, "water", codes.PermissionDenied},
		{"an officer, a street", officer, street, "xinhua", codes.PermissionDenied},
		{"a grid worker", authx.Principal{Subject: "gw", Role: authx.RoleGridWorker, Scope: "xinhua-taoyuan-01"}, unit, "", codes.PermissionDenied},
		{"a dispatcher", authx.Principal{Subject: "desk", Role: authx.RoleDispatcher, Scope: catalog.CityScope}, dept, "", codes.PermissionDenied},
		{"nobody", authx.Principal{}, dept, "", codes.Unauthenticated},
	} {
		_, err := scorecards(h.client(in, tc.p), tc.kind, tc.id, from, until)
		if status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	for _, tc := range []struct {
		name string
		p    authx.Principal
		kind whistlev1.ScorecardKind
		want string
	}{
		{"a street's supervisor, streets", xinhua, street, "xinhua"},
		{"an officer, units", officer, unit, "urban-management-xinhua"},
		{"an officer, departments", officer, dept, "urban-management"},
	} {
		resp, err := scorecards(h.client(in, tc.p), tc.kind, "", from, until)
		if err != nil || len(resp.GetScorecards()) != 1 || resp.GetScorecards()[0].GetId() != tc.want {
			t.Errorf("%s, with no id: %v %v, want %s's alone", tc.name, resp, err, tc.want)
		}
	}
}

func TestASupervisorBelowTheCitySeesTheDepartmentsPartsInTheirAreaAlone(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	// Water in two streets of Xinhua's and one of Dongfeng's; urban-management in Dongfeng.
	for i, place := range []struct{ grid, dept string }{
		{"xinhua-taoyuan-01", "water"}, {"xinhua-taoyuan-02", "water"}, {"xinhua-hebin-01", "water"},
		{"dongfeng-jinqiao-01", "water"}, {"dongfeng-jinqiao-01", "urban-management"},
	} {
		h.raiseAndRoute(issue(t, i), place.grid, "water-supply", place.dept, farOff, 2*farOff)
	}
	from, until := h.t0.Add(-time.Hour), h.t0.Add(time.Hour)
	counts := func(p authx.Principal, kind whistlev1.ScorecardKind) (string, string) {
		resp, err := scorecards(h.client(in, p), kind, "", from, until)
		if err != nil {
			t.Fatalf("%s's scorecards: %v", p.Scope, err)
		}
		var out []string
		for _, c := range resp.GetScorecards() {
			out = append(out, fmt.Sprintf("%s:%d", c.GetId(), c.GetDispatched()))
		}
		return strings.Join(out, " "), resp.GetAreaId()
	}
	wait.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got, _ := counts(citySupervisor, whistlev1.ScorecardKind_SCORECARD_KIND_DEPARTMENT); got != "urban-management:1 water:4" {
			return fmt.Errorf("the city sees %s", got)
		}
		return nil
	})
	for _, tc := range []struct {
		scope, want string
	}{
		{"xinhua", "water:3"},
		{"xinhua-taoyuan", "water:2"},
		{"xinhua-taoyuan-02", "water:1"},
		{"dongfeng", "urban-management:1 water:1"},
		{"hexi", ""},
	} {
		p := authx.Principal{Subject: "sup-" + tc.scope, Role: authx.RoleSupervisor, Scope: tc.scope}
		if got, area := counts(p, whistlev1.ScorecardKind_SCORECARD_KIND_DEPARTMENT); got != tc.want || area != tc.scope {
			t.Errorf("a supervisor of %s sees %q limited to %q; want %q limited to %s", tc.scope, got, area, tc.want, tc.scope)
		}
	}
	if got, area := counts(authx.Principal{Subject: "sup-dongfeng", Role: authx.RoleSupervisor, Scope: "dongfeng"},
		whistlev1.ScorecardKind_SCORECARD_KIND_STREET); got != "dongfeng:2" || area != "" {
		t.Errorf("Dongfeng's supervisor sees the street's scorecards %q (limited to %q), want dongfeng:2, not limited", got, area)
	}
}
