package department

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

// harness is a department service on real NATS and Redis, with a fake clock, served over gRPC.
type harness struct {
	*servicetest.Env
	svc  *Service
	stop func() // stops svc's consumer
	addr string
}

// epoch is when every test begins, by the fake clock.
var epoch = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// start runs the service and its gRPC server for one test.
func start(t *testing.T) *harness {
	t.Helper()
	h := &harness{Env: servicetest.NewEnv(t, epoch)}
	// The inbox's own mechanics are tested without rosters, so that no push interleaves with
	// the changes each test makes; rosters_test.go runs the department with the sample city's.
	h.Deps.Rosters = roster.None(h.Deps.Catalog.TimeZone())
	h.svc = h.newService()
	h.stop = h.Run(h.svc)
	h.addr = h.Serve(h.svc.Register)
	return h
}

// newService returns one more instance of the service on the harness's NATS and Redis.
func (h *harness) newService() *Service {
	h.T.Helper()
	svc, err := New(h.Deps, Config{})
	if err != nil {
		h.T.Fatal(err)
	}
	return svc
}

// client calls the service as p; a zero p calls without a token.
func (h *harness) client(p authx.Principal) whistlev1.DepartmentServiceClient {
	return whistlev1.NewDepartmentServiceClient(h.Dial(h.addr, p))
}

func officer(dept string, n int) authx.Principal {
	return authx.Principal{Subject: fmt.Sprintf("%s-officer-%d", dept, n), Role: authx.RoleOfficer, Scope: dept}
}

// dispatch raises an issue in a grid and routes it to departments, lead first, as intake and
// routing would, and returns its case number.
func (h *harness) dispatch(key, grid string, depts ...string) string {
	h.T.Helper()
	id := casenum.FromKey(key)
	_, community, street, err := h.Deps.Catalog.Grid(grid)
	if err != nil {
		h.T.Fatal(err)
	}
	h.Append(&whistlev1.Event{Id: id + ".raised", IssueId: id,
		Actor: &whistlev1.Actor{Subject: "gw-1", Role: string(authx.RoleGridWorker), Scope: grid},
		Payload: &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{RequestId: key, GridId: grid,
			CommunityId: community.ID, StreetId: street.ID, CategoryId: "blocked-drain", Text: "water on the road " + key}}})
	routed := &whistlev1.IssueRouted{RuleId: "blocked-drain"}
	for i, d := range depts {
		role := whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING
		if i == 0 {
			role = whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD
		}
		routed.Dispatches = append(routed.Dispatches, &whistlev1.Dispatch{DepartmentId: d, Role: role,
			ReportInBy: timestamppb.New(h.Clock.Now().Add(time.Hour)), ResolveBy: timestamppb.New(h.Clock.Now().Add(24 * time.Hour))})
	}
	h.Append(&whistlev1.Event{Id: id + ".routed", IssueId: id, Actor: &whistlev1.Actor{Subject: "routing", Role: "service"},
		Payload: &whistlev1.Event_Routed{Routed: routed}})
	return id
}

// events returns the issue's events of a kind.
func (h *harness) events(id, kind string) []*whistlev1.Event {
	h.T.Helper()
	recs, err := h.Deps.Log.Read(h.T.Context(), id, 0)
	if err != nil {
		h.T.Fatal(err)
	}
	var out []*whistlev1.Event
	for _, r := range recs {
		if eventlog.Kind(r.Event) == kind {
			out = append(out, r.Event)
		}
	}
	return out
}

// inbox lists a whole inbox, page by page.
func inbox(t *testing.T, c whistlev1.DepartmentServiceClient, req *whistlev1.ListInboxRequest) []*whistlev1.InboxItem {
	t.Helper()
	var out []*whistlev1.InboxItem
	for {
		resp, err := c.ListInbox(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetItems()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req = proto.CloneOf(req)
		req.PageToken = resp.GetNextPageToken()
	}
}

func ids(items []*whistlev1.InboxItem) string {
	var s []string
	for _, it := range items {
		s = append(s, it.GetIssueId())
	}
	return strings.Join(s, ",")
}

func TestAWatchShowsADispatchOnceTheConsumerAppliesItAndWritesNothingItself(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.Settled(Name)
	h.stop() // the consumer falls behind: what is dispatched now is only in the stream
	pending := h.dispatch("unapplied", "xinhua-taoyuan-02", "water")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	watch, err := h.client(officer("water", 1)).WatchInbox(ctx, &whistlev1.WatchInboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	bookmark, err := watch.Recv()
	if err != nil || bookmark.GetItem() != nil || bookmark.GetPosition() == "" {
		t.Fatalf("first watched %v, %v; want the bookmark of an inbox that holds nothing yet", bookmark, err)
	}
	// A live view reads; only the consumer writes the department's state.
	if pos, err := h.svc.store.Position(t.Context(), pending); err != nil || pos.LastSeq != 0 {
		t.Fatalf("the watch left %s at %+v, %v; want it untouched", pending, pos, err)
	}
	h.Run(h.newService())
	got, err := watch.Recv()
	if err != nil || got.GetItem().GetIssueId() != pending || got.GetPosition() == "" {
		t.Fatalf("watched %v, %v; want the dispatch %s with its position", got, err, pending)
	}
}

func TestADispatchShowsInTheInboxAndOnTheWatchAsItHappens(t *testing.T) {
	t.Parallel()
	h := start(t)
	c := h.client(officer("water", 1))
	before := h.dispatch("before", "xinhua-taoyuan-01", "water", "urban-management")
	h.Settled(Name) // the watch starts from the inbox as the projection holds it

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	watch, err := c.WatchInbox(ctx, &whistlev1.WatchInboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := watch.Recv()
	if err != nil || first.GetItem().GetIssueId() != before || first.GetPosition() != "" {
		t.Fatalf("first watched item %v, %v; want the open item %s, with no position", first, err, before)
	}
	if bookmark, err := watch.Recv(); err != nil || bookmark.GetItem() != nil || bookmark.GetPosition() == "" {
		t.Fatalf("watched %v, %v after the open inbox; want a bookmark", bookmark, err)
	}
	h.Clock.Advance(time.Minute)
	after := h.dispatch("after", "hexi-binjiang-01", "water")
	h.dispatch("elsewhere", "hexi-binjiang-01", "power") // not water's: never shown
	got, err := watch.Recv()
	if err != nil || got.GetItem().GetIssueId() != after {
		t.Fatalf("watched %v, %v; want the new dispatch %s", got, err, after)
	}
	it := got.GetItem()
	if it.GetGridId() != "hexi-binjiang-01" || it.GetStreetId() != "hexi" || it.GetCategoryId() != "blocked-drain" ||
		it.GetText() != "water on the road after" || it.GetSeq() == 0 ||
		it.GetAssignment().GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED ||
		it.GetAssignment().GetRole() != whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD ||
		!it.GetAssignment().GetDispatchedAt().AsTime().Equal(h.Stored(after, "routed").Time) ||
		!it.GetAssignment().GetReportInBy().AsTime().Equal(epoch.Add(time.Minute+time.Hour)) {
		t.Fatalf("item %v", it)
	}

	// Reporting in shows on the watch too.
	if _, err := c.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: before}); err != nil {
		t.Fatal(err)
	}
	got, err = watch.Recv()
	if err != nil || got.GetItem().GetIssueId() != before ||
		got.GetItem().GetAssignment().GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED {
		t.Fatalf("watched %v, %v; want %s acknowledged", got, err, before)
	}

	h.Settled(Name)
	if got := ids(inbox(t, c, &whistlev1.ListInboxRequest{})); got != before+","+after {
		t.Fatalf("open inbox %s; want %s,%s oldest first", got, before, after)
	}
	assisting := inbox(t, h.client(officer("urban-management", 1)), &whistlev1.ListInboxRequest{})
	if len(assisting) != 1 || assisting[0].GetAssignment().GetRole() != whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING {
		t.Fatalf("urban-management's inbox %v; want %s assisting", assisting, before)
	}
}

func TestAnOfficerReportsInThenResolves(t *testing.T) {
	t.Parallel()
	h := start(t)
	o := officer("water", 1)
	c := h.client(o)
	id := h.dispatch("lifecycle", "xinhua-hebin-01", "water")
	h.Clock.Advance(10 * time.Minute)
	ack, err := c.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: strings.ToLower(strings.ReplaceAll(id, "-", ""))})
	if err != nil {
		t.Fatal(err)
	}
	a := ack.GetAssignment()
	if a.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED || a.GetAcknowledgedBy() != o.Subject ||
		!a.GetAcknowledgedAt().AsTime().Equal(h.Stored(id, "acknowledged").Time) {
		t.Fatalf("after reporting in: %v", a)
	}
	h.Clock.Advance(time.Hour)
	res, err := c.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, UnitId: "water", Note: "  drain cleared\n"})
	if err != nil {
		t.Fatal(err)
	}
	if a := res.GetAssignment(); a.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED ||
		a.GetResolvedBy() != o.Subject || a.GetResolutionNote() != "drain cleared" || a.GetAcknowledgedBy() != o.Subject {
		t.Fatalf("after resolving: %v", a)
	}
	acks, resolutions := h.events(id, "acknowledged"), h.events(id, "resolved")
	if len(acks) != 1 || acks[0].GetId() != fmt.Sprintf("%s.%d.acknowledged", id, acks[0].GetPrevSeq()) ||
		acks[0].GetActor().GetSubject() != o.Subject || acks[0].GetCorrelationId() != id ||
		len(resolutions) != 1 || resolutions[0].GetId() != fmt.Sprintf("%s.%d.resolved", id, resolutions[0].GetPrevSeq()) {
		t.Fatalf("events: %v %v", acks, resolutions)
	}
	h.Settled(Name)
	if open := inbox(t, c, &whistlev1.ListInboxRequest{}); len(open) != 0 {
		t.Fatalf("open inbox %v; want empty", open)
	}
	if done := inbox(t, c, &whistlev1.ListInboxRequest{Status: whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED}); ids(done) != id {
		t.Fatalf("resolved inbox %s; want %s", ids(done), id)
	}
	// Resolving again as the same officer with the same note is idempotent; with another note, or
	// as another officer, it is refused naming when and by whom the part was resolved.
	if _, err := c.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "drain cleared"}); err != nil {
		t.Fatalf("resolving again with the same note: %v", err)
	}
	_, err = c.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "drain cleared and the grate replaced"})
	resolvedAt := h.Stored(id, "resolved").Time.UTC().Format(time.RFC3339)
	if msg := status.Convert(err).Message(); status.Code(err) != codes.FailedPrecondition || !strings.Contains(msg, "at "+resolvedAt+" by "+o.Subject) {
		t.Fatalf("resolving again with another note: %v; want FailedPrecondition naming the resolution at %s by %s", err, resolvedAt, o.Subject)
	}
	if note := h.events(id, "resolved")[0].GetResolved().GetNote(); note != "drain cleared" {
		t.Fatalf("the resolved event's note is %q; want the first note", note)
	}
	_, err = h.client(officer("water", 2)).Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "mine"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("another officer resolving: %v; want FailedPrecondition", err)
	}
	if _, err := c.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("reporting in after resolution: %v; want FailedPrecondition", err)
	}
	if n := len(h.events(id, "resolved")); n != 1 {
		t.Fatalf("%d resolved events; want 1", n)
	}
}

func TestAnOfficerActingOnADispatchTheConsumerHasNotAppliedYetIsServedFromTheStream(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.stop() // nothing applies the stream to the view but the command itself
	id := h.dispatch("fresh", "xinhua-hebin-01", "water")
	c := h.client(officer("water", 1))
	ack, err := c.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id})
	if err != nil || ack.GetAssignment().GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED {
		t.Fatalf("Acknowledge = %v, %v; want acknowledged", ack, err)
	}
	other := h.dispatch("fresh-resolve", "xinhua-hebin-01", "gas")
	h.Append(&whistlev1.Event{Id: other + ".acknowledged.gas", IssueId: other,
		Actor:   &whistlev1.Actor{Subject: officer("gas", 1).Subject, Role: string(authx.RoleOfficer), Scope: "gas"},
		Payload: &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "gas"}}})
	res, err := h.client(officer("gas", 1)).Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: other, Note: "valve shut"})
	if err != nil || res.GetAssignment().GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED {
		t.Fatalf("Resolve = %v, %v; want resolved", res, err)
	}
	// An assignment the stream does not hold either is still not found.
	_, err = h.client(officer("power", 1)).Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Acknowledge for a department not summoned = %v; want NotFound", err)
	}
}

func TestResolvingBeforeReportingInIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.dispatch("early", "xinhua-hebin-01", "water")
	_, err := h.client(officer("water", 1)).Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "done already"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "report in before resolving") {
		t.Fatalf("Resolve = %v; want FailedPrecondition", err)
	}
	if n := len(h.events(id, "resolved")); n != 0 {
		t.Fatalf("%d resolved events; want none", n)
	}
}

func TestReportingInTwiceIsIdempotentForTheSameOfficerOnly(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.dispatch("twice", "xinhua-hebin-01", "water")
	first := h.client(officer("water", 1))
	for range 2 {
		if _, err := first.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := h.client(officer("water", 2)).Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), officer("water", 1).Subject) {
		t.Fatalf("another officer: %v; want FailedPrecondition naming who reported in", err)
	}
	if n := len(h.events(id, "acknowledged")); n != 1 {
		t.Fatalf("%d acknowledged events; want 1", n)
	}
}

func TestAnIssueOutsideTheOfficersDepartmentIsAnsweredAsOneNeverRaised(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.dispatch("elsewhere", "xinhua-hebin-01", "water")
	never := casenum.FromKey("never raised")
	gas := h.client(officer("gas", 1))
	for name, call := range map[string]func(string) error{
		"ack": func(id string) error {
			_, err := gas.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id})
			return err
		},
		"resolve": func(id string) error {
			_, err := gas.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "done"})
			return err
		},
	} {
		hidden, missing := status.Convert(call(id)), status.Convert(call(never))
		if hidden.Code() != codes.NotFound || missing.Code() != codes.NotFound {
			t.Errorf("%s: got %v for another department's issue and %v for one never raised; want NotFound for both", name, hidden.Err(), missing.Err())
		}
		if a, b := strings.ReplaceAll(hidden.Message(), id, "<case>"), strings.ReplaceAll(missing.Message(), never, "<case>"); a != b {
			t.Errorf("%s: the answers differ: %q for another department's issue, %q for one never raised", name, a, b)
		}
	}
}

func TestCallersOutsideTheDepartmentAreRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.dispatch("guarded", "xinhua-hebin-01", "water")
	water := h.client(officer("water", 1))
	gas := h.client(officer("gas", 1))
	worker := h.client(authx.Principal{Subject: "gw-1", Role: authx.RoleGridWorker, Scope: "xinhua-hebin-01"})
	supervisor := h.client(authx.Principal{Subject: "sup-1", Role: authx.RoleSupervisor, Scope: "hexi"})
	ack := func(c whistlev1.DepartmentServiceClient, req *whistlev1.AcknowledgeRequest) error {
		_, err := c.Acknowledge(t.Context(), req)
		return err
	}
	list := func(c whistlev1.DepartmentServiceClient, req *whistlev1.ListInboxRequest) error {
		_, err := c.ListInbox(t.Context(), req)
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"another department's officer", ack(gas, &whistlev1.AcknowledgeRequest{IssueId: id, UnitId: "water"}), codes.PermissionDenied},
		{"an officer of a department not summoned", ack(gas, &whistlev1.AcknowledgeRequest{IssueId: id}), codes.NotFound},
		{"a grid worker", ack(worker, &whistlev1.AcknowledgeRequest{IssueId: id, UnitId: "water"}), codes.PermissionDenied},
		{"a supervisor", ack(supervisor, &whistlev1.AcknowledgeRequest{IssueId: id, UnitId: "water"}), codes.PermissionDenied},
		{"no token", ack(h.client(authx.Principal{}), &whistlev1.AcknowledgeRequest{IssueId: id}), codes.Unauthenticated},
		{"a bad case number", ack(water, &whistlev1.AcknowledgeRequest{IssueId: "nope"}), codes.InvalidArgument},
		{"an unknown issue", ack(water, &whistlev1.AcknowledgeRequest{IssueId: casenum.FromKey("never raised")}), codes.NotFound},
		{"an empty note", func() error {
			_, err := water.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: " "})
			return err
		}(), codes.InvalidArgument},
		{"another department's inbox", list(water, &whistlev1.ListInboxRequest{UnitId: "gas"}), codes.PermissionDenied},
		{"a grid worker's inbox", list(worker, &whistlev1.ListInboxRequest{UnitId: "water"}), codes.PermissionDenied},
		{"a supervisor naming no department", list(supervisor, &whistlev1.ListInboxRequest{}), codes.InvalidArgument},
		{"a note over the limit", func() error {
			_, err := water.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: strings.Repeat("水", 2001)})
			return err
		}(), codes.InvalidArgument},
		{"a case number of a megabyte", ack(water, &whistlev1.AcknowledgeRequest{IssueId: strings.Repeat("K", 1<<20)}), codes.InvalidArgument},
		{"a department id of a megabyte", ack(water, &whistlev1.AcknowledgeRequest{IssueId: id, UnitId: strings.Repeat("w", 1<<20)}), codes.InvalidArgument},
		{"a department id of a megabyte for an inbox", list(supervisor, &whistlev1.ListInboxRequest{UnitId: strings.Repeat("w", 1<<20)}), codes.InvalidArgument},
		{"an unknown department for an inbox", list(supervisor, &whistlev1.ListInboxRequest{UnitId: "ufo"}), codes.InvalidArgument},
		{"an undefined status", list(water, &whistlev1.ListInboxRequest{Status: 42}), codes.InvalidArgument},
		{"a bad page token", list(water, &whistlev1.ListInboxRequest{PageToken: "%%%"}), codes.InvalidArgument},
		{"a page too large", list(water, &whistlev1.ListInboxRequest{PageSize: 201}), codes.InvalidArgument},
		{"a negative page size", list(water, &whistlev1.ListInboxRequest{PageSize: -1}), codes.InvalidArgument},
	} {
		if status.Code(tc.err) != tc.want || len(status.Convert(tc.err).Message()) > 300 {
			t.Errorf("%s: %.200v; want a short %v", tc.name, tc.err, tc.want)
		}
	}
	if n := len(h.events(id, "acknowledged")) + len(h.events(id, "resolved")); n != 0 {
		t.Fatalf("%d events after refused commands; want none", n)
	}
	// A street supervisor reads a department's inbox within their street only.
	h.dispatch("hexi", "hexi-binjiang-01", "water")
	h.Settled(Name)
	if got := inbox(t, supervisor, &whistlev1.ListInboxRequest{UnitId: "water"}); len(got) != 1 || got[0].GetStreetId() != "hexi" {
		t.Fatalf("hexi supervisor sees %v; want only the hexi issue", got)
	}
}

func TestTenOfficersReportingInAtOnceProduceOneAcknowledgement(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.dispatch("race", "dongfeng-jinqiao-02", "gas")
	clients := make([]whistlev1.DepartmentServiceClient, 10)
	for i := range clients {
		clients[i] = h.client(officer("gas", i))
	}
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			_, errs[i] = c.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch status.Code(err) {
		case codes.OK:
			won++
		case codes.FailedPrecondition, codes.Aborted:
		default:
			t.Errorf("Acknowledge: %v", err)
		}
	}
	acks := h.events(id, "acknowledged")
	if won != 1 || len(acks) != 1 {
		t.Fatalf("%d calls succeeded and %d acknowledged events; want 1 and 1", won, len(acks))
	}
	h.Settled(Name)
	item := inbox(t, clients[0], &whistlev1.ListInboxRequest{})
	if len(item) != 1 || item[0].GetAssignment().GetAcknowledgedBy() != acks[0].GetActor().GetSubject() {
		t.Fatalf("inbox %v; want it acknowledged by the winner %s", item, acks[0].GetActor().GetSubject())
	}
}

func TestTwoReplicasApplyEachIssuesEventsInStreamOrderWithoutRepair(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.Run(h.newService()) // a second process on the same NATS and Redis
	var dispatched []string
	// Every issue's events go in at once, interleaved with the other issues'. Each partition's
	// consumer pins one replica, so no replica receives an event ahead of an earlier one of its
	// issue and the repair by reading the stream never runs; when both replicas shared the
	// consumer, rounds like these had one do so within a few issues.
	before := eventlog.OutOfOrder(Name)
	for i := range maxOrderRounds * 10 {
		id := h.dispatch(fmt.Sprintf("order-%d", i), "xinhua-hebin-01", "water", "power")
		for _, dept := range []string{"water", "power"} {
			o := officer(dept, 1)
			actor := &whistlev1.Actor{Subject: o.Subject, Role: string(o.Role), Scope: dept}
			h.Append(&whistlev1.Event{Id: id + ".acknowledged." + dept, IssueId: id, Actor: actor,
				Payload: &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: dept}}})
			h.Append(&whistlev1.Event{Id: id + ".resolved." + dept, IssueId: id, Actor: actor,
				Payload: &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: dept, Note: "done"}}})
		}
		dispatched = append(dispatched, id)
	}
	h.Settled(Name)
	if n := eventlog.OutOfOrder(Name) - before; n != 0 {
		t.Fatalf("%d events reached a replica ahead of an earlier one of their issue; each partition should have one owner", n)
	}
	for _, id := range dispatched {
		last, err := h.Deps.Log.Last(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		st, err := h.svc.store.Get(t.Context(), id)
		if err != nil || st.LastSeq != last || len(st.Assignments) != 2 {
			t.Fatalf("%s: %+v, %v; want both assignments applied up to seq %d", id, st, err, last)
		}
		for _, a := range st.Assignments {
			if o := officer(a.DepartmentID, 1).Subject; a.Status != assignment.Resolved || a.AcknowledgedBy != o || a.ResolvedBy != o {
				t.Errorf("%s: %s's assignment %+v; want reported in, then resolved, by %s", id, a.DepartmentID, a, o)
			}
		}
	}
}

func TestInboxPagesRunOldestDispatchFirst(t *testing.T) {
	t.Parallel()
	h := start(t)
	var want []string
	for i := range 5 {
		h.Clock.Advance(time.Minute)
		want = append(want, h.dispatch(fmt.Sprintf("page-%d", i), "xinhua-taoyuan-03", "housing"))
	}
	h.Settled(Name)
	// Oldest dispatch first, by the millisecond the stream stored it, then by case number: two
	// dispatches may be stored within one millisecond.
	slices.SortStableFunc(want, func(a, b string) int {
		return cmp.Or(cmp.Compare(h.Stored(a, "routed").Time.UnixMilli(), h.Stored(b, "routed").Time.UnixMilli()), strings.Compare(a, b))
	})
	c := h.client(authx.Principal{Subject: "disp-1", Role: authx.RoleDispatcher, Scope: catalog.CityScope})
	first, err := c.ListInbox(t.Context(), &whistlev1.ListInboxRequest{UnitId: "housing", PageSize: 2})
	if err != nil || len(first.GetItems()) != 2 || first.GetNextPageToken() == "" {
		t.Fatalf("first page %v, %v", first, err)
	}
	if got := ids(inbox(t, c, &whistlev1.ListInboxRequest{UnitId: "housing", PageSize: 2})); got != strings.Join(want, ",") {
		t.Fatalf("pages %s; want %s", got, strings.Join(want, ","))
	}
	if got := inbox(t, c, &whistlev1.ListInboxRequest{UnitId: "housing", Status: whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED}); len(got) != 0 {
		t.Fatalf("acknowledged items %v; want none", got)
	}
}

func TestRedeliveryAndGapsChangeNothing(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.dispatch("redelivered", "xinhua-hebin-02", "water")
	if _, err := h.client(officer("water", 1)).Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
		t.Fatal(err)
	}
	h.Settled(Name)
	recs, err := h.Deps.Log.Read(t.Context(), id, 0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("read %d records, %v; want 3", len(recs), err)
	}
	before, err := h.svc.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := h.svc.store.Apply(t.Context(), rec); err != nil {
			t.Fatalf("applying seq %d again: %v", rec.Seq, err)
		}
	}
	// An issue whose raise was not applied yet refuses its routing.
	other := h.dispatch("gapped", "xinhua-hebin-02", "water")
	h.Settled(Name)
	h.stop()
	if err := platform.Reset(t.Context(), h.Deps, h.svc); err != nil {
		t.Fatal(err)
	}
	gapped, err := h.Deps.Log.Read(t.Context(), other, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.store.Apply(t.Context(), gapped[1]); !errors.Is(err, eventlog.ErrGap) {
		t.Fatalf("applying a routing before its raise: %v; want ErrGap", err)
	}
	if st, err := h.svc.store.Get(t.Context(), other); err != nil || st.LastSeq != 0 || len(st.Assignments) != 0 {
		t.Fatalf("after a gap: %+v, %v; want nothing applied", st, err)
	}
	for _, rec := range recs {
		for range 2 {
			if err := h.svc.store.Apply(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	after, err := h.svc.store.Get(t.Context(), id)
	if err != nil || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("state after redelivery\n%+v\nwant\n%+v (%v)", after, before, err)
	}
}

func TestWipingAndReplayingRebuildsTheSameInboxes(t *testing.T) {
	t.Parallel()
	h := start(t)
	o := officer("water", 1)
	c := h.client(o)
	var dispatched []string
	for i := range 6 {
		h.Clock.Advance(time.Minute)
		dispatched = append(dispatched, h.dispatch(fmt.Sprintf("replay-%d", i), "dongfeng-yuanlin-01", "water", "environment"))
	}
	for _, id := range dispatched[:4] {
		if _, err := c.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range dispatched[:2] {
		if _, err := c.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "fixed " + id}); err != nil {
			t.Fatal(err)
		}
	}
	h.Settled(Name)
	snapshot := func() []*whistlev1.InboxItem {
		var all []*whistlev1.InboxItem
		for _, dept := range []string{"water", "environment"} {
			c := h.client(officer(dept, 1))
			all = append(all, inbox(t, c, &whistlev1.ListInboxRequest{})...)
			all = append(all, inbox(t, c, &whistlev1.ListInboxRequest{Status: whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED})...)
		}
		return all
	}
	before := snapshot()
	if len(before) != 12 {
		t.Fatalf("%d items before the wipe; want 12", len(before))
	}
	h.stop()
	if err := platform.Reset(t.Context(), h.Deps, h.svc); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(); len(got) != 0 {
		t.Fatalf("%d items after the wipe; want none", len(got))
	}
	h.stop = h.Run(h.svc)
	h.Settled(Name)
	after := snapshot()
	if len(after) != len(before) {
		t.Fatalf("%d items after replay; want %d", len(after), len(before))
	}
	for i := range before {
		if !proto.Equal(before[i], after[i]) {
			t.Errorf("item %d after replay:\n%v\nwant\n%v", i, after[i], before[i])
		}
	}
}

// maxOrderRounds bounds the rounds of ten issues a replica-order test sends while waiting for an
// event to reach a replica out of order.
const maxOrderRounds = 20

func TestAResolveWhoseNoteIsNotUTF8IsRefusedOverGRPCNamingTheField(t *testing.T) {
	t.Parallel()
	h := start(t)
	c := h.client(officer("water", 1))
	id := h.dispatch("utf8", "xinhua-hebin-01", "water")
	h.Settled(Name)
	_, err := c.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, UnitId: "water", Note: "cleared \xc3"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "note") {
		t.Fatalf("a note that is not UTF-8: %v; want InvalidArgument naming note", err)
	}
	if got := h.events(id, "resolved"); len(got) != 0 {
		t.Fatalf("a refused resolve wrote %v", got)
	}
}

func TestAReplicaTakesOverThePartitionsOfOneThatStopped(t *testing.T) {
	t.Parallel()
	h := start(t)
	second := h.newService()
	h.Run(second)
	before := h.dispatch("takeover-before", "xinhua-hebin-01", "water")
	h.Settled(Name)
	h.stop() // the first replica, which asked first and so holds every partition, goes away
	// Its partitions pass to the second replica once the server has heard nothing from the first
	// for eventlog.OwnerTTL; every event stored meanwhile waits for it, and none is lost.
	after := make([]string, 0, 2*eventlog.Partitions)
	for i := range 2 * eventlog.Partitions {
		after = append(after, h.dispatch(fmt.Sprintf("takeover-%d", i), "xinhua-hebin-01", "water"))
	}
	wait.For(t, 3*eventlog.OwnerTTL, 20*time.Millisecond, func() error {
		for _, id := range append(after, before) {
			last, err := h.Deps.Log.Last(t.Context(), id)
			if err != nil {
				return err
			}
			st, err := second.store.Get(t.Context(), id)
			if err != nil || st.LastSeq != last || len(st.Assignments) != 1 {
				return fmt.Errorf("%s at %d, want %d with its assignment: %v", id, st.LastSeq, last, err)
			}
		}
		return nil
	})
}
