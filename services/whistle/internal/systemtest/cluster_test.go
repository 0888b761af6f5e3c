package systemtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// TestTheWholeSystemRunsOnARedisClusterAndReplaysToTheSameViews runs every service on a Redis
// Cluster of three masters, through the gRPC API: issues raised in every grid are routed, shown
// in inboxes and on a live inbox watch, reported in for and resolved or left to breach; the
// breaches show in the list, page by page, and on a live breach watch; an issue's watch replays
// its timeline. Then Redis is wiped on every master and the replay rebuilds it key for key, and
// the views read as before.
func TestTheWholeSystemRunsOnARedisClusterAndReplaysToTheSameViews(t *testing.T) {
	cluster := redistest.RunCluster(t)
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	quick := WithCatalog(QuickCatalog(t, quickReportIn, time.Hour))
	onCluster := WithRedis(cluster.URL())
	sys := Start(t, dir, clk, quick, onCluster)
	super := Dial(t, sys, Supervisor())
	routed, _ := routable(t, super)
	category := routed[0] // one policy for all, so one time lies past every report-in deadline

	// A supervisor watches breaches city-wide from before the first raise.
	watched := watchBreaches(t, super)

	// Issues in every grid, so that their keys fall in slots all over the cluster.
	gridIDs := grids(t)
	var ids []string
	for i := range 3 * len(gridIDs) {
		grid := gridIDs[i%len(gridIDs)]
		ids = append(ids, raise(t, Dial(t, sys, GridWorker(grid)), fmt.Sprintf("cluster-%02d", i), grid, category).GetId())
	}
	dispatched := waitForStatus(t, super, ids, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	byDept := map[string][]string{}
	for _, id := range ids {
		for _, a := range dispatched[id].GetAssignments() {
			byDept[a.GetUnitId()] = append(byDept[a.GetUnitId()], id)
		}
	}
	for dept, want := range byDept {
		if got := itemIDs(inbox(t, super, dept, whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("the inbox of %s lists %v, want %v", dept, got, want)
		}
	}
	lead := dispatched[ids[0]].GetAssignments()[0].GetUnitId()
	inboxWatch := watchInbox(t, sys, lead)

	// A third resolved, a third reported in for, a third left to breach.
	third := len(ids) / 3
	resolved, acked, late := ids[:third], ids[third:2*third], ids[2*third:]
	for _, id := range append(slices.Clone(resolved), acked...) {
		for _, a := range dispatched[id].GetAssignments() {
			officer := Dial(t, sys, Officer(a.GetUnitId()))
			if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id, UnitId: a.GetUnitId()}); err != nil {
				t.Fatalf("acknowledge %s for %s: %v", id, a.GetUnitId(), err)
			}
			if !slices.Contains(resolved, id) {
				continue
			}
			if _, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, UnitId: a.GetUnitId(), Note: "fixed"}); err != nil {
				t.Fatalf("resolve %s for %s: %v", id, a.GetUnitId(), err)
			}
		}
	}
	waitForStatus(t, super, resolved, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	start := clk.Now()

	// Past the report-in deadlines, not the resolve ones: every issue left alone breaches (and
	// one reported in late would too; the auditor, reading the stream alone, says which).
	var deadline time.Time // the last report-in deadline
	lateAssignments := 0
	for _, id := range late {
		for _, a := range dispatched[id].GetAssignments() {
			lateAssignments++
			if by := a.GetReportInBy().AsTime(); by.After(deadline) {
				deadline = by
			}
		}
	}
	waitUntilPast(t, deadline)
	clk.Set(deadline.Add(time.Minute))
	wait.For(t, waitTotal, 100*time.Millisecond, func() error {
		if got := len(breaches(t, super)); got < lateAssignments {
			return fmt.Errorf("%d breaches listed, want at least %d", got, lateAssignments)
		}
		return Audit(t, sys, ids).Agree()
	})
	Settle(t, sys)

	// The breaches list the same in pages of three as in one, and the watch saw each once.
	all := breaches(t, super)
	if n := Audit(t, sys, ids).Breaches(); len(all) != n {
		t.Errorf("%d breaches listed, the stream owes %d", len(all), n)
	}
	if paged := breachPages(t, super, 3); !slices.EqualFunc(paged, all, func(a, b *whistlev1.Breach) bool { return proto.Equal(a, b) }) {
		t.Errorf("breaches in pages of 3:\n%v\nin one page:\n%v", paged, all)
	}
	wait.For(t, waitTotal, 50*time.Millisecond, func() error { return watched.saw(all) })

	// The inbox watch ends on each item of the lead department as its inbox lists it.
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		listed := append(inbox(t, super, lead, whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_UNSPECIFIED),
			inbox(t, super, lead, whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED)...)
		return inboxWatch.showsAsListed(listed)
	})

	// The issues list newest first, the same in pages of four as in one.
	listed := issuePages(t, super, 200)
	if got, want := issueIDs(listed), slices.Sorted(slices.Values(ids)); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("the city lists %v, want %v", got, want)
	}
	if paged := issuePages(t, super, 4); !slices.EqualFunc(paged, listed, func(a, b *whistlev1.Issue) bool { return proto.Equal(a, b) }) {
		t.Errorf("issues in pages of 4 read %v, in one page %v", issueIDs(paged), issueIDs(listed))
	}

	// An issue's watch sends its timeline up to the view as it stands.
	watchIssueToTheEnd(t, super, resolved[0])

	// Every master holds some of it.
	for _, srv := range cluster.Servers {
		node := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		n, err := node.DBSize(t.Context()).Result()
		_ = node.Close()
		if err != nil || n == 0 {
			t.Errorf("master %s holds %d keys (%v); the keys should spread over every master", srv.Addr(), n, err)
		}
	}

	// Wipe every master and replay: the same keys and values, and the same views.
	before := readViews(t, super, ids)
	events := StreamMessages(t, sys)
	Stop(t, sys)
	rdb := redistest.ClusterClient(t, cluster)
	derived := dumpCluster(t, rdb)
	if err := redistest.FlushAll(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTotal)
	defer cancel()
	res, err := system.Replay(ctx, Options(dir, clk, quick, onCluster))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if res.Events != events || res.Appended != 0 {
		t.Errorf("replay applied %d events and appended %d; want the %d the stream holds, and none appended", res.Events, res.Appended, events)
	}
	if got := dumpCluster(t, rdb); got != derived {
		t.Errorf("the rebuilt cluster differs from what the live system kept:\n--- rebuilt\n%s\n--- live\n%s", got, derived)
	}
	sys = Start(t, dir, clock.NewFake(start), quick, onCluster)
	if got := StreamMessages(t, sys); got != events {
		t.Errorf("the stream holds %d events after the replay, want the %d it held before", got, events)
	}
	before.diff(t, readViews(t, Dial(t, sys, Supervisor()), ids))
}

// dumpCluster renders every key of the cluster, the escalation timer loop's bookkeeping aside.
func dumpCluster(t *testing.T, rdb redis.UniversalClient) string {
	t.Helper()
	deleteTimerBookkeeping(t, rdb)
	dump, err := redistest.Dump(t.Context(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	if dump == "" {
		t.Fatal("the cluster holds nothing; the test would prove nothing")
	}
	return dump
}

// breachPages lists every breach city-wide in pages of size.
func breachPages(t *testing.T, c Clients, size int32) []*whistlev1.Breach {
	t.Helper()
	return allPages(t, "breaches", func(token string) ([]*whistlev1.Breach, string, error) {
		res, err := c.Escalation.ListBreaches(t.Context(), &whistlev1.ListBreachesRequest{PageSize: size, PageToken: token})
		return res.GetBreaches(), res.GetNextPageToken(), err
	})
}

// issuePages lists every issue of the city, newest first, in pages of size.
func issuePages(t *testing.T, c Clients, size int32) []*whistlev1.Issue {
	t.Helper()
	return allPages(t, "issues", func(token string) ([]*whistlev1.Issue, string, error) {
		res, err := c.Intake.ListIssues(t.Context(), &whistlev1.ListIssuesRequest{AreaId: "city", PageSize: size, PageToken: token})
		return res.GetIssues(), res.GetNextPageToken(), err
	})
}

// issueIDs are the case numbers of issues, in order.
func issueIDs(issues []*whistlev1.Issue) []string {
	out := make([]string, len(issues))
	for i, is := range issues {
		out[i] = is.GetId()
	}
	return out
}

// breachWatch is a WatchBreaches stream read in the background.
type breachWatch struct {
	mu   sync.Mutex
	seen map[uint64]*whistlev1.Breach // by the breach event's sequence
	dups []uint64
	err  error
}

// watchBreaches opens a city-wide breach watch as c and returns once it is listening.
func watchBreaches(t *testing.T, c Clients) *breachWatch {
	t.Helper()
	stream, err := c.Escalation.WatchBreaches(t.Context(), &whistlev1.WatchBreachesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil { // the watch listens once its headers arrive
		t.Fatal(err)
	}
	w := &breachWatch{seen: map[uint64]*whistlev1.Breach{}}
	go func() {
		for {
			res, err := stream.Recv()
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			b := res.GetBreach()
			if _, again := w.seen[b.GetSeq()]; again {
				w.dups = append(w.dups, b.GetSeq())
			}
			w.seen[b.GetSeq()] = b
			w.mu.Unlock()
		}
	}()
	return w
}

// saw reports whether the watch has shown exactly the breaches in want, each once.
func (w *breachWatch) saw(want []*whistlev1.Breach) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.dups) > 0 {
		return fmt.Errorf("the watch showed breaches %v twice", w.dups)
	}
	for _, b := range want {
		if got, ok := w.seen[b.GetSeq()]; !ok || !proto.Equal(got, b) {
			return fmt.Errorf("the watch showed %v for the breach listed as %v (watch error: %v)", got, b, w.err)
		}
	}
	if len(w.seen) != len(want) {
		return fmt.Errorf("the watch showed %d breaches, %d are listed", len(w.seen), len(want))
	}
	return nil
}

// inboxWatch is a WatchInbox stream read in the background: the latest item shown of each issue.
type inboxWatch struct {
	mu     sync.Mutex
	latest map[string]*whistlev1.InboxItem
	err    error
}

// watchInbox opens a watch of dept's inbox as its officer and returns once it sent the inbox as it
// stood and its bookmark.
func watchInbox(t *testing.T, sys *system.System, dept string) *inboxWatch {
	t.Helper()
	stream, err := Dial(t, sys, Officer(dept)).Department.WatchInbox(t.Context(), &whistlev1.WatchInboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	w := &inboxWatch{latest: map[string]*whistlev1.InboxItem{}}
	for {
		res, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch the inbox of %s: %v", dept, err)
		}
		if res.GetItem() == nil {
			break // the bookmark: changes follow
		}
		w.latest[res.GetItem().GetIssueId()] = res.GetItem()
	}
	go func() {
		for {
			res, err := stream.Recv()
			w.mu.Lock()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					w.err = err
				}
				w.mu.Unlock()
				return
			}
			w.latest[res.GetItem().GetIssueId()] = res.GetItem()
			w.mu.Unlock()
		}
	}()
	return w
}

// showsAsListed reports whether the watch's latest item of each issue listed shows its
// assignment as the list does, and whether it showed no other issue.
func (w *inboxWatch) showsAsListed(listed []*whistlev1.InboxItem) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, it := range listed {
		got := w.latest[it.GetIssueId()]
		if !proto.Equal(got.GetAssignment(), it.GetAssignment()) {
			return fmt.Errorf("the watch last showed %s as %v, the inbox lists %v (watch error: %v)", it.GetIssueId(), got.GetAssignment(), it.GetAssignment(), w.err)
		}
	}
	if len(w.latest) != len(listed) {
		return fmt.Errorf("the watch showed %d issues, the inbox lists %d", len(w.latest), len(listed))
	}
	return nil
}

// watchIssueToTheEnd watches an issue until the watch has sent every entry of its timeline, and
// checks that the view it sent last is the issue as GetIssue reads it.
func watchIssueToTheEnd(t *testing.T, c Clients, id string) {
	t.Helper()
	want := getIssue(t, c, id)
	ctx, cancel := context.WithTimeout(t.Context(), waitTotal)
	defer cancel()
	stream, err := c.Intake.WatchIssue(ctx, &whistlev1.WatchIssueRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	var entries []*whistlev1.TimelineEntry
	var last *whistlev1.Issue
	for len(entries) < len(want.GetTimeline()) {
		res, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch %s after %d entries: %v", id, len(entries), err)
		}
		entries, last = append(entries, res.GetEntry()), res.GetIssue()
	}
	if !slices.EqualFunc(entries, want.GetTimeline(), func(a, b *whistlev1.TimelineEntry) bool { return proto.Equal(a, b) }) {
		t.Errorf("the watch of %s sent the timeline\n%v\nGetIssue reads\n%v", id, entries, want.GetTimeline())
	}
	if !proto.Equal(last, want.GetIssue()) {
		t.Errorf("the watch of %s last sent\n%v\nGetIssue reads\n%v", id, last, want.GetIssue())
	}
}

// timerBookkeeping are the keys the escalation timer loop keeps for itself, which no replay
// rebuilds: the lease (who fires the timers) and when the timers were last reconciled.
var timerBookkeeping = []string{"escalation:timers:lease", "escalation:timers:reconciled"}

// deleteTimerBookkeeping removes timerBookkeeping, one key at a time (on a cluster they may lie in
// different slots), before a dump compares the views.
func deleteTimerBookkeeping(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	for _, k := range timerBookkeeping {
		if err := rdb.Del(t.Context(), k).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
