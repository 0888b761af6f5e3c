package systemtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/evidence/evidencetest"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// views is everything a supervisor can read of a set of issues: the intake view with
// timelines, every department's inbox, and the breaches.
type views struct {
	issues   map[string]*whistlev1.GetIssueResponse
	inboxes  map[string][]*whistlev1.InboxItem
	breaches []*whistlev1.Breach
}

// readViews reads the views of the issues through the APIs.
func readViews(t *testing.T, c Clients, ids []string) views {
	t.Helper()
	v := views{issues: map[string]*whistlev1.GetIssueResponse{}, inboxes: map[string][]*whistlev1.InboxItem{}}
	for _, id := range ids {
		v.issues[id] = getIssue(t, c, id)
	}
	for _, dept := range departments(t) {
		v.inboxes[dept] = inbox(t, c, dept, whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_UNSPECIFIED)
	}
	v.breaches = breaches(t, c)
	return v
}

// diff reports every way got differs from want.
func (want views) diff(t *testing.T, got views) {
	t.Helper()
	for id, w := range want.issues {
		if !proto.Equal(got.issues[id], w) {
			t.Errorf("issue %s reads\n%v\nwant\n%v", id, got.issues[id], w)
		}
	}
	for dept, w := range want.inboxes {
		if !slices.EqualFunc(got.inboxes[dept], w, func(a, b *whistlev1.InboxItem) bool { return proto.Equal(a, b) }) {
			t.Errorf("inbox of %s reads\n%v\nwant\n%v", dept, got.inboxes[dept], w)
		}
	}
	if !slices.EqualFunc(got.breaches, want.breaches, func(a, b *whistlev1.Breach) bool { return proto.Equal(a, b) }) {
		t.Errorf("breaches read\n%v\nwant\n%v", got.breaches, want.breaches)
	}
}

func TestWipingRedisAndReplayingGivesIdenticalViews(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	quick := WithCatalog(QuickCatalog(t, quickReportIn, time.Hour))
	sys := Start(t, dir, clk, quick)
	super := Dial(t, sys, Supervisor())
	routed, unrouted := routable(t, super)
	category := routed[0]
	grid := "xinhua-taoyuan-01"
	worker := Dial(t, sys, GridWorker(grid))

	// The resolved issue carries photos, at its raise and its resolutions, which the views show
	// again after the replay.
	photo, err := evidence.Upload(t.Context(), worker.Intake, grid, "", evidencetest.JPEGWithGPS(64, 48))
	if err != nil {
		t.Fatal(err)
	}
	raisedWith, err := worker.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
		RequestId: "replay-resolved", GridId: grid, CategoryId: category, Text: "with a photo", PhotoIds: []string{photo.GetId()},
	})
	if err != nil {
		t.Fatal(err)
	}
	resolved := raisedWith.GetIssue().GetId()
	acked := raise(t, worker, "replay-acked", grid, category).GetId()
	breached := raise(t, worker, "replay-breached", grid, category).GetId()
	ids := []string{resolved, acked, breached}
	dispatched := waitForStatus(t, super, ids, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	if len(unrouted) > 0 {
		waiting := raise(t, worker, "replay-waiting", grid, unrouted[0]).GetId()
		waitForStatus(t, super, []string{waiting}, whistlev1.IssueStatus_ISSUE_STATUS_AWAITING_DISPATCH)
		ids = append(ids, waiting)
	}

	for _, id := range []string{resolved, acked} {
		for _, a := range dispatched[id].GetAssignments() {
			officer := Dial(t, sys, Officer(a.GetUnitId()))
			if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id, UnitId: a.GetUnitId()}); err != nil {
				t.Fatalf("acknowledge %s for %s: %v", id, a.GetUnitId(), err)
			}
			if id != resolved {
				continue
			}
			fixed, err := evidence.Upload(t.Context(), officer.Intake, "", id, evidencetest.PNG(16, 16))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, UnitId: a.GetUnitId(), Note: "fixed",
				PhotoIds: []string{fixed.GetId()}}); err != nil {
				t.Fatalf("resolve %s for %s: %v", id, a.GetUnitId(), err)
			}
		}
	}
	waitForStatus(t, super, []string{resolved}, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	start := clk.Now()
	waitForStatus(t, super, []string{acked}, whistlev1.IssueStatus_ISSUE_STATUS_IN_PROGRESS)

	// Move past the report-in deadlines (all alike: one category) but not the resolve ones.
	late := dispatched[breached].GetAssignments()
	waitUntilPast(t, late[0].GetReportInBy().AsTime())
	clk.Set(late[0].GetReportInBy().AsTime().Add(time.Minute))
	wait.For(t, waitTotal, 100*time.Millisecond, func() error {
		if got := len(breaches(t, super)); got < len(late) {
			return fmt.Errorf("%d breaches listed, want %d", got, len(late))
		}
		return Audit(t, sys, ids).Agree()
	})
	// One issue's report-in deadline passes while the system is down: the live system will owe its
	// breach once it runs again, and a replay that fired timers would append it.
	pending := raise(t, worker, "replay-pending", grid, category).GetId()
	ids = append(ids, pending)
	pendingBy := waitForStatus(t, super, []string{pending}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[pending].GetAssignments()[0].GetReportInBy().AsTime()
	Settle(t, sys)
	before := readViews(t, super, ids)
	events := StreamMessages(t, sys)
	Stop(t, sys)
	derived := dumpRedis(t, filepath.Join(dir, "redis"), true)
	waitUntilPast(t, pendingBy)

	// The rules and catalog a replay runs with decide nothing: it only rebuilds. With a rules
	// table that routes nothing, an undispatched issue still reads as it did.
	nothing := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(nothing, []byte("rules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTotal)
	defer cancel()
	opts := Options(dir, clk, quick)
	opts.RulesPath = nothing
	clk.Set(clk.Now().Add(24 * time.Hour)) // and a clock past every deadline fires nothing
	res, err := system.Replay(ctx, opts)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if res.Events != events || res.Rate() <= 0 || res.Appended != 0 {
		t.Errorf("replay applied %d events at %.0f/s and appended %d; want the %d the stream holds, and none appended",
			res.Events, res.Rate(), res.Appended, events)
	}
	if got := dumpRedis(t, filepath.Join(dir, "redis"), false); got != derived {
		t.Errorf("the rebuilt Redis differs from what the live system kept:\n--- rebuilt\n%s\n--- live\n%s", got, derived)
	}

	// The views read as before, on a clock back before the pending deadline, so that nothing fires
	// while they are read.
	sys = Start(t, dir, clock.NewFake(start), quick)
	if got := StreamMessages(t, sys); got != events {
		t.Errorf("the stream holds %d events after the replay, want the %d it held before", got, events)
	}
	super = Dial(t, sys, Supervisor())
	before.diff(t, readViews(t, super, ids))
	shown := getIssue(t, super, resolved).GetIssue()
	var photos []*whistlev1.Photo
	photos = append(photos, shown.GetPhotos()...)
	for _, a := range shown.GetAssignments() {
		photos = append(photos, a.GetPhotos()...)
	}
	if want := 1 + len(dispatched[resolved].GetAssignments()); len(photos) != want {
		t.Fatalf("the resolved issue shows %d photos after the replay, want %d", len(photos), want)
	}
	for _, ph := range photos {
		if _, _, err := evidence.Fetch(t.Context(), super.Intake, resolved, ph.GetId()); err != nil {
			t.Errorf("photo %s after the replay: %v", ph.GetId(), err)
		}
	}
}

// dumpRedis starts the redis-server of a stopped system on its files and renders every
// service's derived keys (the escalation timer loop's bookkeeping and the notifier's outbox,
// which are no views, aside); with wipe it then deletes
// everything, as losing Redis would.
func dumpRedis(t *testing.T, dir string, wipe bool) string {
	t.Helper()
	srv, err := redisx.StartServer(t.Context(), redisx.ServerOptions{Dir: dir, AppendOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop redis: %v", err)
		}
	}()
	rdb, err := redisx.Connect(t.Context(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if n, err := rdb.DBSize(t.Context()).Result(); err != nil || n == 0 {
		t.Fatalf("redis holds %d keys (%v); the test would prove nothing", n, err)
	}
	deleteTimerBookkeeping(t, rdb)
	// The notifier's queue and its record of deliveries are an outbox, not a view: a replay
	// leaves them alone and the stream cannot rebuild them.
	if err := redisx.DeletePrefix(t.Context(), rdb, "department-notify:"); err != nil {
		t.Fatal(err)
	}
	dump, err := redistest.Dump(t.Context(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	if wipe {
		if err := rdb.FlushAll(t.Context()).Err(); err != nil {
			t.Fatalf("flush redis: %v", err)
		}
	}
	return dump
}
