package systemtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// Deadlines of the scorecard test's catalog: a water supply failure must be reported in within
// scoreReportIn, and an urgent one resolved within scoreUrgentResolve, short enough to pass while
// the test waits; everything else keeps the sample city's hours and days.
const (
	scoreReportIn      = 3 * time.Second
	scoreUrgentResolve = 6 * time.Second
)

// scorecardCatalog writes the sample city with the utility policies shortened: water-supply is
// reported in within scoreReportIn and resolved within an hour, or, when urgent, within
// scoreUrgentResolve, without reminders or a chain (the test's waits are seconds; a chain's steps
// would race the script's late report-ins).
func scorecardCatalog(t *testing.T) string {
	t.Helper()
	src := catalog.SampleSource()
	for old, repl := range map[string]string{
		"utility: {report_in: 1h, resolve: 24h, remind_at: [80], chain: urgent}":        fmt.Sprintf("utility: {report_in: %s, resolve: 1h}", scoreReportIn),
		"utility-urgent: {report_in: 30m, resolve: 8h, remind_at: [80], chain: urgent}": fmt.Sprintf("utility-urgent: {report_in: %s, resolve: %s}", scoreReportIn, scoreUrgentResolve),
	} {
		if !bytes.Contains(src, []byte(old)) {
			t.Fatalf("the sample catalog has no %q to shorten", old)
		}
		src = bytes.ReplaceAll(src, []byte(old), []byte(repl))
	}
	path := filepath.Join(t.TempDir(), "scorecard-city.yaml")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// scoreIssue is one issue of the scripted history: who raised it, where and how.
type scoreIssue struct {
	id, grid string
	raiser   Clients
}

// scoreWorld is the scorecard test's system and the people acting in it.
type scoreWorld struct {
	t     *testing.T
	sys   *system.System
	super Clients
	// escalation is the log as the escalation service's NATS user writes it.
	escalation *eventlog.Log
	// workers raise in their grid and rate what they raised; officers act for their unit.
	workers  map[string]Clients
	officers map[string]Clients
}

func (w *scoreWorld) worker(grid string) Clients {
	if c, ok := w.workers[grid]; ok {
		return c
	}
	w.workers[grid] = Dial(w.t, w.sys, GridWorker(grid))
	return w.workers[grid]
}

func (w *scoreWorld) officer(unit string) Clients {
	if c, ok := w.officers[unit]; ok {
		return c
	}
	w.officers[unit] = Dial(w.t, w.sys, Officer(unit))
	return w.officers[unit]
}

// raise raises n issues of category in the grids, in turn, and returns them.
func (w *scoreWorld) raise(key string, n int, category string, urgency whistlev1.Urgency, grids ...string) []scoreIssue {
	w.t.Helper()
	var out []scoreIssue
	for i := range n {
		grid := grids[i%len(grids)]
		c := w.worker(grid)
		res, err := c.Intake.RaiseIssue(w.t.Context(), &whistlev1.RaiseIssueRequest{RequestId: fmt.Sprintf("%s-%d", key, i), GridId: grid,
			CategoryId: category, Urgency: urgency, Text: fmt.Sprintf("%s %d in %s", category, i, grid)})
		if err != nil {
			w.t.Fatalf("raise %s %d: %v", key, i, err)
		}
		out = append(out, scoreIssue{id: res.GetIssue().GetId(), grid: grid, raiser: c})
	}
	return out
}

// each runs act for the issues, stopping the test at the first failure.
func (w *scoreWorld) each(what string, issues []scoreIssue, act func(ctx context.Context, is scoreIssue) error) {
	w.t.Helper()
	for _, is := range issues {
		if err := act(w.t.Context(), is); err != nil {
			w.t.Fatalf("%s %s: %v", what, is.id, err)
		}
	}
}

func (w *scoreWorld) ack(unit string, issues []scoreIssue) {
	w.each(unit+" reports in on", issues, func(ctx context.Context, is scoreIssue) error {
		_, err := w.officer(unit).Department.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: is.id, UnitId: unit})
		return err
	})
}

func (w *scoreWorld) resolve(unit string, issues []scoreIssue) {
	w.each(unit+" resolves", issues, func(ctx context.Context, is scoreIssue) error {
		_, err := w.officer(unit).Department.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: is.id, UnitId: unit, Note: "done"})
		return err
	})
}

func (w *scoreWorld) giveBack(unit string, issues []scoreIssue) {
	w.each(unit+" returns", issues, func(ctx context.Context, is scoreIssue) error {
		_, err := w.officer(unit).Department.ReturnAssignment(ctx, &whistlev1.ReturnAssignmentRequest{IssueId: is.id, UnitId: unit, Reason: "not ours"})
		return err
	})
}

// escalationLog opens the log on the system in dir as the escalation service's NATS user, which
// may append the events escalation owns.
func escalationLog(t *testing.T, dir string, sys *system.System) *eventlog.Log {
	t.Helper()
	users, err := natsx.ReadUsersConfig(filepath.Join(dir, system.UsersFile))
	if err != nil {
		t.Fatal(err)
	}
	password := ""
	for _, u := range users {
		if u.Username == "escalation" {
			password = u.Password
		}
	}
	nc, err := nats.Connect(sys.Deps().NATS.ConnectedUrl(), nats.UserInfo("escalation", password))
	if err != nil {
		t.Fatalf("connect as escalation: %v", err)
	}
	t.Cleanup(nc.Close)
	log, err := eventlog.Open(t.Context(), nc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// append adds an event to an issue as escalation would, conditional on its last sequence, and
// returns its sequence.
func (w *scoreWorld) append(issueID string, payload func(*whistlev1.Event)) uint64 {
	w.t.Helper()
	log := w.escalation
	for range eventlog.MaxDecideAttempts {
		last, err := log.Last(w.t.Context(), issueID)
		if err != nil {
			w.t.Fatal(err)
		}
		ev := &whistlev1.Event{IssueId: issueID, PrevSeq: last, OccurredAt: timestamppb.Now(), CorrelationId: issueID,
			Actor: &whistlev1.Actor{Subject: "escalation", Role: "service"}}
		payload(ev)
		seq, err := log.Append(w.t.Context(), ev)
		if errors.Is(err, eventlog.ErrConflict) {
			continue // a reaction of a service came first
		}
		if err != nil {
			w.t.Fatalf("append %s to %s: %v", eventlog.Kind(ev), issueID, err)
		}
		return seq
	}
	w.t.Fatalf("append to %s: lost the race %d times", issueID, eventlog.MaxDecideAttempts)
	return 0
}

// records returns the issue's events as the stream stored them.
func (w *scoreWorld) records(issueID string) []eventlog.Record {
	w.t.Helper()
	recs, err := w.sys.Deps().Log.Read(w.t.Context(), issueID, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	return recs
}

// scorecards asks for the scorecards of a kind over [from, until) as c's caller.
func scoreCards(t *testing.T, c Clients, kind whistlev1.ScorecardKind, id string, from, until time.Time) *whistlev1.GetScorecardsResponse {
	t.Helper()
	resp, err := c.Escalation.GetScorecards(t.Context(), &whistlev1.GetScorecardsRequest{Kind: kind, Id: id,
		From: timestamppb.New(from), Until: timestamppb.New(until)})
	if err != nil {
		t.Fatalf("scorecards of %s %q: %v", kind, id, err)
	}
	return resp
}

// counts is a scorecard's counts, rates and rank written out, durations aside: what the test
// counted by hand.
func counts(s *whistlev1.Scorecard) string {
	r := func(x *whistlev1.ScorecardRate) string {
		return fmt.Sprintf("%d/%d", x.GetNumerator(), x.GetDenominator())
	}
	var levels []string
	for _, l := range s.GetBreachesByLevel() {
		levels = append(levels, fmt.Sprintf("L%d:%d", l.GetLevel(), l.GetCount()))
	}
	rank := fmt.Sprint(s.GetRank())
	if s.GetSmallSample() {
		rank = "small"
	}
	return fmt.Sprintf("%s parts=%d in=%s in-on-time=%s resolved=%s resolved-on-time=%s returns=%d satisfied=%s breaches=%d[%s] ext=%d/%d/%d urges=%d whistles=%d rank=%s",
		s.GetId(), s.GetDispatched(), r(s.GetResponseRate()), r(s.GetOnTimeReportInRate()), r(s.GetResolutionRate()), r(s.GetOnTimeResolutionRate()),
		s.GetReturns(), r(s.GetSatisfactionRate()), s.GetBreaches(), strings.Join(levels, " "),
		s.GetExtensionsRequested(), s.GetExtensionsApproved(), s.GetExtensionsDenied(), s.GetUrges(), s.GetWhistles(), rank)
}

// allCounts is counts of every scorecard of a response, one per line, in the response's order.
func allCounts(resp *whistlev1.GetScorecardsResponse) string {
	var lines []string
	for _, s := range resp.GetScorecards() {
		lines = append(lines, counts(s))
	}
	return strings.Join(lines, "\n")
}

// TestScorecardsOfAScriptedHistoryMatchTheFiguresCountedByHandAndAReplayRebuildsThem drives 32
// issues through the four services over gRPC (raises, routing, report-ins on time and late,
// resolutions, returns, ratings, breaches when the stream's clock passes deadlines, extension
// requests), appends the urges, extension decisions and escalations a supervisor and the chains
// would, and checks every count of the departments', units' and streets' scorecards against
// figures counted by hand, and every time against times measured from the stream's records.
// Then Redis is wiped and the replay rebuilds the same keys and the same scorecards.
func TestScorecardsOfAScriptedHistoryMatchTheFiguresCountedByHandAndAReplayRebuildsThem(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	opts := []Option{WithCatalog(scorecardCatalog(t))}
	sys := Start(t, dir, clk, opts...)
	w := &scoreWorld{t: t, sys: sys, super: Dial(t, sys, Supervisor()), escalation: escalationLog(t, dir, sys),
		workers: map[string]Clients{}, officers: map[string]Clients{}}
	from := time.Now().Add(-time.Minute)
	ctx := t.Context()
	normal, urgent := whistlev1.Urgency_URGENCY_NORMAL, whistlev1.Urgency_URGENCY_URGENT

	// B: six water supply failures in Xinhua, the water bureau's alone, to report in within 3s.
	// C: two urgent ones, to resolve within 6s too. A: twenty unsafe stalls in Xinhua, led by
	// its market supervision office (mr) with its enforcement squad (um) assisting, with hours to
	// report in and days to resolve.
	b := w.raise("score-b", 6, "water-supply", normal, "xinhua-taoyuan-01", "xinhua-hebin-01")
	c := w.raise("score-c", 2, "water-supply", urgent, "xinhua-taoyuan-02")
	a := w.raise("score-a", 20, "unsafe-stall", normal, "xinhua-taoyuan-01", "xinhua-taoyuan-02", "xinhua-hebin-01", "xinhua-hebin-02")
	var xinhua []string
	for _, is := range slices.Concat(a, b, c) {
		xinhua = append(xinhua, is.id)
	}
	routed := waitForStatus(t, w.super, xinhua, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	// Everything in Xinhua is dispatched before the cut and D, four unsafe stalls in Dongfeng,
	// after it.
	cut := time.Now()
	d := w.raise("score-d", 4, "unsafe-stall", normal, "dongfeng-jinqiao-01")
	var dongfeng []string
	for _, is := range d {
		dongfeng = append(dongfeng, is.id)
	}
	waitForStatus(t, w.super, dongfeng, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	const mrX, umX, mrD = "market-regulation-xinhua", "urban-management-xinhua", "market-regulation-dongfeng"

	// A, all in time: mr reports in on A0..A17 and resolves A0..A13, returns A18 (to the desk)
	// and leaves A19; um reports in on A0..A13, resolves A0..A11 and returns A14. mr asks for
	// more time on A15 and A16.
	w.ack(mrX, a[:18])
	w.ack(umX, a[:14])
	w.resolve(mrX, a[:14])
	w.resolve(umX, a[:12])
	w.giveBack(mrX, a[18:19])
	w.giveBack(umX, a[14:15])
	extended := map[string]uint64{}
	for _, is := range a[15:17] {
		resolveBy := routed[is.id].GetAssignments()[0].GetResolveBy().AsTime()
		if _, err := w.officer(mrX).Department.RequestExtension(ctx, &whistlev1.RequestExtensionRequest{IssueId: is.id, UnitId: mrX,
			Proposed: timestamppb.New(resolveBy.Add(24 * time.Hour)), Reason: "the stall's owner is away"}); err != nil {
			t.Fatalf("extension on %s: %v", is.id, err)
		}
		for _, rec := range w.records(is.id) {
			if rec.Event.GetExtensionRequested() != nil {
				extended[is.id] = rec.Seq
			}
		}
	}
	// D: Dongfeng's office reports in on all four and resolves two; its squad does nothing.
	w.ack(mrD, d)
	w.resolve(mrD, d[:2])

	// B and C, late: once the stream's clock has passed C's resolve deadlines (and so every
	// report-in deadline of B and C), water reports in on B0, B1, C0 and C1, resolves C0 late
	// and B0 in time; the timers breach what was never cleared.
	var latest time.Time
	for _, is := range c {
		if by := routed[is.id].GetAssignments()[0].GetResolveBy().AsTime(); by.After(latest) {
			latest = by
		}
	}
	waitUntilPast(t, latest)
	w.ack("water", slices.Concat(b[:2], c))
	w.resolve("water", slices.Concat(c[:1], b[:1]))
	clk.Set(latest.Add(time.Minute))
	wait.For(t, waitTotal, 100*time.Millisecond, func() error {
		clk.Advance(time.Second) // a timer whose breach lost a race fires again at the next look
		res, err := w.super.Escalation.ListBreaches(ctx, &whistlev1.ListBreachesRequest{DepartmentId: "water", PageSize: 200})
		if err != nil || len(res.GetBreaches()) != 10 {
			return fmt.Errorf("water's breaches: %d (%v), want 10", len(res.GetBreaches()), err)
		}
		return nil
	})
	// B5 is returned once its breach is recorded.
	w.giveBack("water", b[5:6])

	// Ratings of the resolved issues, by their raisers: A0..A9 5 5 4 4 4 5 4 3 2 1, B0 5, C0 2.
	rated := slices.Concat(a[:10], b[:1], c[:1])
	var ids []string
	for _, is := range rated {
		ids = append(ids, is.id)
	}
	waitForStatus(t, w.super, ids, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	for i, score := range []int32{5, 5, 4, 4, 4, 5, 4, 3, 2, 1, 5, 2} {
		if _, err := rated[i].raiser.Intake.RateIssue(ctx, &whistlev1.RateIssueRequest{IssueId: rated[i].id, Score: score}); err != nil {
			t.Fatalf("rate %s: %v", rated[i].id, err)
		}
	}

	// What a supervisor adds: the decisions on mr's extensions (A15 approved, A16 denied) and
	// urges (mr on A17 and A19, um on A13, water on B4).
	for i, is := range a[15:17] {
		w.append(is.id, func(ev *whistlev1.Event) {
			ev.Payload = &whistlev1.Event_ExtensionDecided{ExtensionDecided: &whistlev1.ExtensionDecided{DepartmentId: "market-regulation", UnitId: mrX,
				Kind: whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, Approved: i == 0, Reason: map[bool]string{false: "not a reason to wait"}[i == 0],
				Deadline: routed[is.id].GetAssignments()[0].GetResolveBy(), RequestedSeq: extended[is.id]}}
			if i == 0 {
				ev.GetExtensionDecided().Granted = timestamppb.New(routed[is.id].GetAssignments()[0].GetResolveBy().AsTime().Add(24 * time.Hour))
			}
		})
	}
	for _, u := range []struct {
		is         scoreIssue
		dept, unit string
	}{{a[17], "market-regulation", mrX}, {a[19], "market-regulation", mrX}, {a[13], "urban-management", umX}, {b[4], "water", "water"}} {
		w.append(u.is.id, func(ev *whistlev1.Event) {
			ev.Actor = &whistlev1.Actor{Subject: "supervisor@city", Role: string(authx.RoleSupervisor), Scope: authx.CityScope}
			ev.Payload = &whistlev1.Event_Urged{Urged: &whistlev1.IssueUrged{RequestId: "urge-" + u.is.id, DepartmentId: u.dept, UnitId: u.unit, Note: "report today"}}
		})
	}
	Settle(t, sys)
	until := time.Now().Add(time.Hour)
	department, unit, street := whistlev1.ScorecardKind_SCORECARD_KIND_DEPARTMENT, whistlev1.ScorecardKind_SCORECARD_KIND_UNIT, whistlev1.ScorecardKind_SCORECARD_KIND_STREET

	// Counted by hand. mr in Xinhua: 20 parts; reported in 18 (A0..A17), all in time; resolved 14
	// (A0..A13), in time; returned 1 (A18); rated 10 (A0..A9, as the lead), 7 of them 4 or 5;
	// 2 extensions asked, 1 approved, 1 denied; urged twice. mr in Dongfeng: 4 parts, reported in
	// 4, resolved 2. um in Xinhua: 20; reported in 14, resolved 12, returned 1 (A14), urged once;
	// in Dongfeng: 4, none reported in. water: 8 (B0..B5, C0, C1); reported in 4 (B0, B1, C0,
	// C1), all late; resolved 2: B0 in time, C0 late; returned 1 (B5); rated 2 (B0 5, C0 2);
	// breaches 10: the report-in deadlines of all 8 and the resolve deadlines of C0 and C1, none
	// escalated (the policy has no chain); urged once (B4). On-time resolution ranks the
	// large ones: mr 16/24, um 12/24 (departments), 14/20 and 12/20 (units).
	wantDepartments := strings.Join([]string{
		"market-regulation parts=24 in=22/24 in-on-time=22/24 resolved=16/24 resolved-on-time=16/24 returns=1 satisfied=7/10 breaches=0[] ext=2/1/1 urges=2 whistles=0 rank=1",
		"urban-management parts=24 in=14/24 in-on-time=14/24 resolved=12/24 resolved-on-time=12/24 returns=1 satisfied=0/0 breaches=0[] ext=0/0/0 urges=1 whistles=0 rank=2",
		"water parts=8 in=4/8 in-on-time=0/8 resolved=2/8 resolved-on-time=1/8 returns=1 satisfied=1/2 breaches=10[L0:10] ext=0/0/0 urges=1 whistles=0 rank=small",
	}, "\n")
	wantUnits := strings.Join([]string{
		"market-regulation-xinhua parts=20 in=18/20 in-on-time=18/20 resolved=14/20 resolved-on-time=14/20 returns=1 satisfied=7/10 breaches=0[] ext=2/1/1 urges=2 whistles=0 rank=1",
		"urban-management-xinhua parts=20 in=14/20 in-on-time=14/20 resolved=12/20 resolved-on-time=12/20 returns=1 satisfied=0/0 breaches=0[] ext=0/0/0 urges=1 whistles=0 rank=2",
		"market-regulation-dongfeng parts=4 in=4/4 in-on-time=4/4 resolved=2/4 resolved-on-time=2/4 returns=0 satisfied=0/0 breaches=0[] ext=0/0/0 urges=0 whistles=0 rank=small",
		"urban-management-dongfeng parts=4 in=0/4 in-on-time=0/4 resolved=0/4 resolved-on-time=0/4 returns=0 satisfied=0/0 breaches=0[] ext=0/0/0 urges=0 whistles=0 rank=small",
		"water parts=8 in=4/8 in-on-time=0/8 resolved=2/8 resolved-on-time=1/8 returns=1 satisfied=1/2 breaches=10[L0:10] ext=0/0/0 urges=1 whistles=0 rank=small",
	}, "\n")
	// Xinhua: the parts of A (40), B (6) and C (2), and its 28 whistles; Dongfeng: D's 8 parts
	// and 4 whistles.
	wantStreets := strings.Join([]string{
		"xinhua parts=48 in=36/48 in-on-time=32/48 resolved=28/48 resolved-on-time=27/48 returns=3 satisfied=8/12 breaches=10[L0:10] ext=2/1/1 urges=4 whistles=28 rank=1",
		"dongfeng parts=8 in=4/8 in-on-time=4/8 resolved=2/8 resolved-on-time=2/8 returns=0 satisfied=0/0 breaches=0[] ext=0/0/0 urges=0 whistles=4 rank=small",
	}, "\n")
	// Before the cut, Dongfeng had nothing: the departments' Xinhua parts alone count.
	wantBeforeCut := strings.Join([]string{
		"market-regulation parts=20 in=18/20 in-on-time=18/20 resolved=14/20 resolved-on-time=14/20 returns=1 satisfied=7/10 breaches=0[] ext=2/1/1 urges=2 whistles=0 rank=1",
		"urban-management parts=20 in=14/20 in-on-time=14/20 resolved=12/20 resolved-on-time=12/20 returns=1 satisfied=0/0 breaches=0[] ext=0/0/0 urges=1 whistles=0 rank=2",
		"water parts=8 in=4/8 in-on-time=0/8 resolved=2/8 resolved-on-time=1/8 returns=1 satisfied=1/2 breaches=10[L0:10] ext=0/0/0 urges=1 whistles=0 rank=small",
	}, "\n")
	read := func(c Clients) []*whistlev1.GetScorecardsResponse {
		return []*whistlev1.GetScorecardsResponse{
			scoreCards(t, c, department, "", from, until), scoreCards(t, c, unit, "", from, until),
			scoreCards(t, c, street, "", from, until), scoreCards(t, c, department, "", from, cut),
		}
	}
	var before []*whistlev1.GetScorecardsResponse
	wait.For(t, waitTotal, 100*time.Millisecond, func() error {
		before = read(w.super)
		for i, want := range []string{wantDepartments, wantUnits, wantStreets, wantBeforeCut} {
			if got := allCounts(before[i]); got != want {
				return fmt.Errorf("scorecards\n%s\nwant\n%s", got, want)
			}
		}
		return nil
	})

	// The times, measured from the stream's records: from each part's dispatch to its first
	// report-in and to the resolution that stands.
	for _, tc := range []struct {
		dept   string
		issues []scoreIssue
	}{{"market-regulation", slices.Concat(a, d)}, {"urban-management", slices.Concat(a, d)}, {"water", slices.Concat(b, c)}} {
		var toAck, toResolve []time.Duration
		for _, is := range tc.issues {
			var dispatched, acked, resolved time.Time
			for _, rec := range w.records(is.id) {
				switch p := rec.Event.GetPayload().(type) {
				case *whistlev1.Event_Routed:
					for _, dp := range p.Routed.GetDispatches() {
						if dp.GetDepartmentId() == tc.dept && dispatched.IsZero() {
							dispatched = rec.Time
						}
					}
				case *whistlev1.Event_Acknowledged:
					if p.Acknowledged.GetDepartmentId() == tc.dept && acked.IsZero() {
						acked = rec.Time
					}
				case *whistlev1.Event_Resolved:
					if p.Resolved.GetDepartmentId() == tc.dept {
						resolved = rec.Time
					}
				}
			}
			if !acked.IsZero() {
				toAck = append(toAck, acked.Sub(dispatched))
			}
			if !resolved.IsZero() {
				toResolve = append(toResolve, resolved.Sub(dispatched))
			}
		}
		var card *whistlev1.Scorecard
		for _, s := range before[0].GetScorecards() {
			if s.GetId() == tc.dept {
				card = s
			}
		}
		for _, m := range []struct {
			what        string
			ds          []time.Duration
			median, p90 *durationpb.Duration
		}{
			{"acknowledge", toAck, card.GetMedianTimeToAcknowledge(), card.GetP90TimeToAcknowledge()},
			{"resolve", toResolve, card.GetMedianTimeToResolve(), card.GetP90TimeToResolve()},
		} {
			slices.Sort(m.ds)
			wantMedian, wantP90 := m.ds[(len(m.ds)+1)/2-1], m.ds[(9*len(m.ds)+9)/10-1] // the ⌈n/2⌉-th and ⌈0.9·n⌉-th
			if m.median.AsDuration() != wantMedian || m.p90.AsDuration() != wantP90 {
				t.Errorf("%s's time to %s: median %s, 90th percentile %s; the stream's records say %s and %s",
					tc.dept, m.what, m.median.AsDuration(), m.p90.AsDuration(), wantMedian, wantP90)
			}
		}
	}

	// Scopes: Dongfeng's supervisor sees the departments' parts in Dongfeng alone; Xinhua's
	// office sees its own unit.
	dongfengSuper := Dial(t, sys, authx.Principal{Subject: "supervisor@dongfeng", Role: authx.RoleSupervisor, Scope: "dongfeng"})
	got := scoreCards(t, dongfengSuper, department, "", from, until)
	if want := strings.Join([]string{
		"market-regulation parts=4 in=4/4 in-on-time=4/4 resolved=2/4 resolved-on-time=2/4 returns=0 satisfied=0/0 breaches=0[] ext=0/0/0 urges=0 whistles=0 rank=small",
		"urban-management parts=4 in=0/4 in-on-time=0/4 resolved=0/4 resolved-on-time=0/4 returns=0 satisfied=0/0 breaches=0[] ext=0/0/0 urges=0 whistles=0 rank=small",
	}, "\n"); allCounts(got) != want || got.GetAreaId() != "dongfeng" {
		t.Errorf("Dongfeng's supervisor sees, limited to %q:\n%s\nwant, limited to dongfeng:\n%s", got.GetAreaId(), allCounts(got), want)
	}
	mine := scoreCards(t, w.officer(mrX), unit, "", from, until)
	if len(mine.GetScorecards()) != 1 || counts(mine.GetScorecards()[0]) != strings.Split(wantUnits, "\n")[0] {
		t.Errorf("mr's officer sees %s", allCounts(mine))
	}

	// Wiping Redis and replaying rebuilds the same keys and the same scorecards.
	Stop(t, sys)
	derived := dumpRedis(t, filepath.Join(dir, "redis"), true)
	rctx, cancel := context.WithTimeout(ctx, waitTotal)
	defer cancel()
	if _, err := system.Replay(rctx, Options(dir, clk, opts...)); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got := dumpRedis(t, filepath.Join(dir, "redis"), false); got != derived {
		t.Errorf("the rebuilt Redis differs from what the live system kept:\n--- rebuilt\n%s\n--- live\n%s", got, derived)
	}
	sys = Start(t, dir, clk, opts...)
	after := read(Dial(t, sys, Supervisor()))
	for i := range before {
		if !proto.Equal(before[i], after[i]) {
			t.Errorf("after the replay the scorecards read\n%v\nwant\n%v", after[i], before[i])
		}
	}
}
