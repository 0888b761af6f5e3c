package department

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/filewatch"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

// startWithRosters runs the department with rosters in which water has wang on duty round the
// clock and gas has nobody on duty today (its one shift is on another weekday), so what lands
// there goes to its head.
func startWithRosters(t *testing.T) *harness {
	t.Helper()
	h := &harness{Env: servicetest.NewEnv(t, epoch)}
	zone := h.Deps.Catalog.TimeZone()
	otherDay := strings.ToLower(time.Now().In(zone).Add(72 * time.Hour).Weekday().String()[:3])
	text := fmt.Sprintf(`
people:
  - {id: wang, name: 王伟}
  - {id: li, name: 李娜}
  - {id: water-head, name: 张强}
  - {id: zhao, name: 赵磊}
  - {id: gas-head, name: 刘芳}
rosters:
  - unit: water
    head: water-head
    shifts:
      - {name: all-day, days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00", people: [wang]}
    overrides:
      - {people: [li], from: 2020-01-01T00:00, to: 2020-01-02T00:00}
  - unit: gas
    head: gas-head
    shifts:
      - {name: one-day, days: [%s], start: "08:00", end: "09:00", people: [zhao]}
`, otherDay)
	r, err := roster.Parse("rosters.yaml", []byte(text), zone, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Deps.Rosters = r
	h.svc = h.newService()
	h.stop = h.Run(h.svc)
	h.addr = h.Serve(h.svc.Register)
	return h
}

func person(unit, id string) authx.Principal {
	return authx.Principal{Subject: id, Role: authx.RoleOfficer, Scope: unit}
}

func TestAnAssignmentIsPushedToTheOfficerOnDutyOrInAGapToTheUnitsHead(t *testing.T) {
	t.Parallel()
	h := startWithRosters(t)
	id := h.dispatch("push-1", grids[0], "water", "gas", "power")
	var pushed *whistlev1.Event
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		evs := h.events(id, "pushed")
		if len(evs) != 1 {
			return fmt.Errorf("%d pushes", len(evs))
		}
		pushed = evs[0]
		return nil
	})
	got := map[string]string{}
	for _, p := range pushed.GetPushed().GetPushes() {
		got[p.GetUnitId()] = p.GetOfficerId() + "/" + p.GetReason().String()
	}
	want := map[string]string{"water": "wang/PUSH_REASON_ON_DUTY", "gas": "gas-head/PUSH_REASON_NOBODY_ON_DUTY"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pushed %v, want %v (power has no roster and is not pushed)", got, want)
	}
	if pushed.GetPushed().GetRosterVersion() != h.Deps.Rosters.Version() || pushed.GetPushed().GetSummonedSeq() != h.Stored(id, "routed").Seq {
		t.Errorf("the push names roster %q and summons %d", pushed.GetPushed().GetRosterVersion(), pushed.GetPushed().GetSummonedSeq())
	}
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		items := inbox(t, h.client(person("water", "wang")), &whistlev1.ListInboxRequest{})
		if len(items) != 1 || items[0].GetIssueId() != id || items[0].GetAssignment().GetOfficerId() != "wang" {
			return fmt.Errorf("wang's inbox holds %v", items)
		}
		return nil
	})
	// The reaction run again on the same record (a redelivery), and a restart, push nothing again.
	if err := h.svc.app.React(t.Context(), h.Stored(id, "routed")); err != nil {
		t.Fatal(err)
	}
	h.stop()
	h.stop = h.Run(h.newService())
	h.Settled(Name)
	if n := len(h.events(id, "pushed")); n != 1 {
		t.Fatalf("%d pushes after a restart; want 1", n)
	}
}

func TestOnlyTheUnitsOfficersActAndEachRefusalWritesNothing(t *testing.T) {
	t.Parallel()
	h := startWithRosters(t)
	id := h.dispatch("act-1", grids[0], "water")
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := len(h.events(id, "pushed")); n != 1 {
			return fmt.Errorf("%d pushes", n)
		}
		return nil
	})
	wang, li, stranger := h.client(person("water", "wang")), h.client(person("water", "li")), h.client(person("water", "stranger"))
	ctx := t.Context()
	count := func() int {
		recs, err := h.Deps.Log.Read(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	refused := func(what string, err error, code codes.Code, words string) {
		t.Helper()
		if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), words) {
			t.Errorf("%s: %v; want %s saying %q", what, err, code, words)
		}
	}
	before := count()
	_, err := stranger.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: id})
	refused("a stranger reporting in", err, codes.PermissionDenied, "not an officer of unit water")
	_, err = wang.HandOver(ctx, &whistlev1.HandOverRequest{IssueId: id, ToOfficerId: "zhao"})
	refused("a hand-over to gas's officer", err, codes.InvalidArgument, "to_officer_id")
	_, err = wang.AddNote(ctx, &whistlev1.AddNoteRequest{IssueId: id, Note: "  "})
	refused("an empty note", err, codes.InvalidArgument, "note")
	deadline := h.Clock.Now().Add(24 * time.Hour)
	_, err = wang.RequestExtension(ctx, &whistlev1.RequestExtensionRequest{IssueId: id, Proposed: timestamppb.New(deadline.Add(-time.Hour)), Reason: "parts"})
	refused("an extension to before the deadline", err, codes.InvalidArgument, "proposed")
	_, err = wang.RequestExtension(ctx, &whistlev1.RequestExtensionRequest{IssueId: id, Proposed: timestamppb.New(deadline.Add(time.Hour))})
	refused("an extension without a reason", err, codes.InvalidArgument, "reason")
	if n := count(); n != before {
		t.Fatalf("refusals wrote %d events", n-before)
	}

	// Allowed: a hand-over to a colleague, a note recorded once per key, an extension asked once.
	resp, err := wang.HandOver(ctx, &whistlev1.HandOverRequest{IssueId: id, ToOfficerId: "li", Note: "I am off at noon"})
	if err != nil || resp.GetAssignment().GetOfficerId() != "li" {
		t.Fatalf("hand-over: %v %v", resp, err)
	}
	for range 2 {
		if _, err := li.AddNote(ctx, &whistlev1.AddNoteRequest{IssueId: id, Note: "valve found", RequestId: "n-1"}); err != nil {
			t.Fatal(err)
		}
	}
	ext, err := li.RequestExtension(ctx, &whistlev1.RequestExtensionRequest{IssueId: id, Proposed: timestamppb.New(deadline.Add(48 * time.Hour)), Reason: "a part is on order"})
	if err != nil || ext.GetAssignment().GetExtensionRequested().GetRequestedBy() != "li" {
		t.Fatalf("extension: %v %v", ext, err)
	}
	_, err = wang.RequestExtension(ctx, &whistlev1.RequestExtensionRequest{IssueId: id, Proposed: timestamppb.New(deadline.Add(72 * time.Hour)), Reason: "more"})
	refused("a second extension while one waits", err, codes.FailedPrecondition, "a supervisor has not decided")
	for kind, want := range map[string]int{"handed-over": 1, "noted": 1, "extension-requested": 1} {
		if n := len(h.events(id, kind)); n != want {
			t.Errorf("%d %s events; want %d", n, kind, want)
		}
	}

	// Too late: another issue's report-in deadline (an hour after dispatch) has passed on the
	// department's clock.
	late := h.dispatch("act-2", grids[0], "water")
	h.Clock.Advance(2 * time.Hour)
	_, err = li.RequestExtension(ctx, &whistlev1.RequestExtensionRequest{IssueId: late, Kind: whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN,
		Proposed: timestamppb.New(deadline), Reason: "late"})
	refused("an extension after the deadline", err, codes.FailedPrecondition, "too late")

	// Once resolved, the part takes no hand-over and no note.
	if _, err := li.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := li.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: id, Note: "fixed"}); err != nil {
		t.Fatal(err)
	}
	before = count()
	_, err = li.AddNote(ctx, &whistlev1.AddNoteRequest{IssueId: id, Note: "after"})
	refused("a note on a resolved part", err, codes.FailedPrecondition, "resolved")
	_, err = li.HandOver(ctx, &whistlev1.HandOverRequest{IssueId: id, ToOfficerId: "wang"})
	refused("a hand-over of a resolved part", err, codes.FailedPrecondition, "resolved")
	if n := count(); n != before {
		t.Fatalf("refusals wrote %d events", n-before)
	}
}

func TestWhoIsOnDutyAndTheGapsAhead(t *testing.T) {
	t.Parallel()
	h := startWithRosters(t)
	sup := h.client(authx.Principal{Subject: "sup", Role: authx.RoleSupervisor, Scope: "city"})
	ctx := t.Context()
	now := time.Now()
	who, err := sup.WhoIsOnDuty(ctx, &whistlev1.WhoIsOnDutyRequest{UnitId: "water", At: timestamppb.New(now)})
	if err != nil || len(who.GetOnDuty()) != 1 || who.GetOnDuty()[0].GetId() != "wang" || who.GetOnDuty()[0].GetName() != "王伟" || who.GetHead().GetId() != "water-head" {
		t.Fatalf("water now: %v %v", who, err)
	}
	over, err := sup.WhoIsOnDuty(ctx, &whistlev1.WhoIsOnDutyRequest{UnitId: "water", At: timestamppb.New(time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC))})
	if err != nil || over.GetShift() != roster.OverrideShift || over.GetOnDuty()[0].GetId() != "li" {
		t.Fatalf("water during the override: %v %v", over, err)
	}
	gaps, err := sup.ListDuty(ctx, &whistlev1.ListDutyRequest{From: timestamppb.New(now)})
	if err != nil {
		t.Fatal(err)
	}
	flagged := strings.Join(gaps.GetFlaggedUnits(), ",")
	if !strings.Contains(flagged, "gas") || strings.Contains(flagged, "water") || !strings.Contains(flagged, "power") {
		t.Errorf("flagged %s; want gas (a gap) and power (no roster), not water", flagged)
	}
	if _, err := sup.ListDuty(ctx, &whistlev1.ListDutyRequest{UnitId: "water", From: timestamppb.New(now), To: timestamppb.New(now.Add(40 * 24 * time.Hour))}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a 40-day listing: %v; want InvalidArgument", err)
	}
	if _, err := h.client(person("gas", "zhao")).WhoIsOnDuty(ctx, &whistlev1.WhoIsOnDutyRequest{UnitId: "water"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gas's officer reading water's duty: %v; want PermissionDenied", err)
	}
}

func TestAChangedRostersFileIsPutInForceAndABrokenOneIsNot(t *testing.T) {
	t.Parallel()
	h := &harness{Env: servicetest.NewEnv(t, epoch)}
	path := filepath.Join(t.TempDir(), "rosters.yaml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const base = `people: [{id: wang}, {id: li}, {id: head}]
rosters:
  - unit: water
    head: head
    shifts: [{name: all-day, days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00", people: [wang]}]
`
	write(base)
	r, err := roster.Load(path, h.Deps.Catalog.TimeZone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Deps.Rosters = r
	logged := &logBuffer{}
	h.Deps.Logger = slog.New(slog.NewTextHandler(logged, nil))
	svc, err := New(h.Deps, Config{RosterPath: path})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	h.stop = h.Run(h.svc)
	h.addr = h.Serve(h.svc.Register)
	sup := h.client(authx.Principal{Subject: "sup", Role: authx.RoleSupervisor, Scope: "city"})
	onDuty := func() string {
		resp, err := sup.WhoIsOnDuty(t.Context(), &whistlev1.WhoIsOnDutyRequest{UnitId: "water", At: timestamppb.Now()})
		if err != nil || len(resp.GetOnDuty()) == 0 {
			return fmt.Sprint(err)
		}
		return resp.GetOnDuty()[0].GetId()
	}
	now := time.Now().In(h.Deps.Catalog.TimeZone())
	overridden := base + fmt.Sprintf("    overrides: [{people: [li], from: %s, to: %s}]\n",
		now.Add(-time.Hour).Format("2006-01-02T15:04"), now.Add(time.Hour).Format("2006-01-02T15:04"))
	wait.For(t, 10*time.Second, 3*filewatch.Settle, func() error {
		write(overridden) // again until the service's watch, which starts with it, has seen a write
		if got := onDuty(); got != "li" {
			return fmt.Errorf("%s on duty; want li, by the override just written", got)
		}
		return nil
	})
	write("rosters: [{unit: water, head: nobody-listed}]\n") // refused: the rosters in force stay
	wait.For(t, 10*time.Second, filewatch.Settle, func() error {
		if !logged.has("a changed rosters file was refused") {
			return fmt.Errorf("the broken file is not refused yet")
		}
		return nil
	})
	if got := onDuty(); got != "li" {
		t.Fatalf("%s on duty after a broken file; want li, by the rosters in force", got)
	}
}

// logBuffer keeps what a logger wrote, for a test to look for a message.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// has reports whether a message containing s was logged.
func (b *logBuffer) has(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}
