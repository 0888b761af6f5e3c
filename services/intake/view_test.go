package intake_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
	"github.com/whistle-dispatch/whistle/services/intake/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
)

// route appends routing's decision: water leads, power assists.
func (e *env) route(id string) {
	e.T.Helper()
	now := e.Clock.Now()
	e.appendEvent(id, "routed", service("routing"), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{RuleId: "drains", Dispatches: []*whistlev1.Dispatch{
			{DepartmentId: "water", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD,
				ReportInBy: timestamppb.New(now.Add(time.Hour)), ResolveBy: timestamppb.New(now.Add(24 * time.Hour))},
			{DepartmentId: "power", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING,
				ReportInBy: timestamppb.New(now.Add(2 * time.Hour)), ResolveBy: timestamppb.New(now.Add(48 * time.Hour))},
		}}}
	})
}

// getWhen polls GetIssue until check accepts the answer.
func getWhen(t *testing.T, c whistlev1.IntakeServiceClient, id string, check func(*whistlev1.GetIssueResponse) error) *whistlev1.GetIssueResponse {
	t.Helper()
	var got *whistlev1.GetIssueResponse
	wait.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		resp, err := c.GetIssue(context.Background(), &whistlev1.GetIssueRequest{Id: id})
		if err != nil {
			return err
		}
		got = resp
		return check(resp)
	})
	return got
}

func TestTheIssueViewFollowsTheDepartmentsEvents(t *testing.T) {
	e := start(t)
	c := e.client(cityDesk)
	id := e.raise(taoyuanWorker, "view-1").GetId()

	e.Clock.Advance(time.Minute)
	e.route(id)
	resp := getWhen(t, c, id, func(r *whistlev1.GetIssueResponse) error {
		if r.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED {
			return fmt.Errorf("status %v", r.GetIssue().GetStatus())
		}
		return nil
	})
	is := resp.GetIssue()
	if is.GetRuleId() != "drains" || len(is.GetAssignments()) != 2 || is.GetAssignments()[1].GetRole() != whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING ||
		!is.GetAssignments()[0].GetReportInBy().AsTime().Equal(e.Clock.Now().Add(time.Hour)) {
		t.Fatalf("after routing: %v", is)
	}

	t.Run("a duty officer of a summoned department may now get it", func(t *testing.T) {
		if _, err := e.client(waterOfficer).GetIssue(context.Background(), &whistlev1.GetIssueRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
	})

	e.Clock.Advance(time.Minute)
	e.appendEvent(id, "acknowledged.water", person(waterOfficer), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water"}}
	})
	e.Clock.Advance(2 * time.Hour)
	e.appendEvent(id, "breached.power.report-in", service("escalation"), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Breached{Breached: &whistlev1.DeadlineBreached{DepartmentId: "power", Kind: whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN,
			Deadline: is.GetAssignments()[1].GetReportInBy()}}
	})
	e.appendEvent(id, "resolved.water", person(waterOfficer), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water", Note: "Cleared the drain\nand checked the pipe"}}
	})
	resp = getWhen(t, c, id, func(r *whistlev1.GetIssueResponse) error {
		if n := len(r.GetTimeline()); n != 5 {
			return fmt.Errorf("%d timeline entries", n)
		}
		return nil
	})
	is = resp.GetIssue()
	water, power := is.GetAssignments()[0], is.GetAssignments()[1]
	if is.GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_IN_PROGRESS ||
		water.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED || water.GetAcknowledgedBy() != waterOfficer.Subject ||
		water.GetResolvedBy() != waterOfficer.Subject || water.GetResolutionNote() != "Cleared the drain\nand checked the pipe" ||
		!water.GetResolvedAt().AsTime().Equal(e.Stored(id, "resolved").Time) ||
		power.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED ||
		!slices.Equal(power.GetBreached(), []whistlev1.DeadlineKind{whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN}) {
		t.Fatalf("with water resolved and power breached: %v", is)
	}
	var kinds []string
	for i, entry := range resp.GetTimeline() {
		kinds = append(kinds, entry.GetKind())
		if i > 0 && entry.GetSeq() <= resp.GetTimeline()[i-1].GetSeq() {
			t.Fatalf("timeline out of order: %v", resp.GetTimeline())
		}
	}
	if want := []string{"raised", "routed", "acknowledged", "breached", "resolved"}; !slices.Equal(kinds, want) {
		t.Fatalf("timeline kinds %v, want %v", kinds, want)
	}
	if entry := resp.GetTimeline()[3]; entry.GetActor() != "system" || entry.GetDepartmentId() != "power" {
		t.Fatalf("breach entry: %v", entry)
	}

	e.appendEvent(id, "acknowledged.power", person(powerOfficer), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "power"}}
	})
	e.appendEvent(id, "resolved.power", person(powerOfficer), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "power", Note: "Cable checked"}}
	})
	getWhen(t, c, id, func(r *whistlev1.GetIssueResponse) error {
		if r.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED {
			return fmt.Errorf("status %v", r.GetIssue().GetStatus())
		}
		return nil
	})
}

func TestAnIssueNoRuleMatchedAwaitsDispatch(t *testing.T) {
	e := start(t)
	id := e.raise(taoyuanWorker, "manual-1").GetId()
	e.appendEvent(id, "needs-dispatch", service("routing"), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_NeedsDispatch{NeedsDispatch: &whistlev1.IssueNeedsDispatch{Reason: "no rule for drains in this grid"}}
	})
	getWhen(t, e.client(taoyuanWorker), id, func(r *whistlev1.GetIssueResponse) error {
		if r.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_AWAITING_DISPATCH {
			return fmt.Errorf("status %v", r.GetIssue().GetStatus())
		}
		return nil
	})
}

func TestTwoReplicasApplyEachIssuesEventsInStreamOrderWithoutRepair(t *testing.T) {
	e := start(t)
	e.replica()
	var ids []string
	// Every issue's events go in at once, interleaved with the other issues'. Each partition's
	// consumer pins one replica, so no replica receives an event ahead of an earlier one of its
	// issue and the repair by reading the stream never runs; when both replicas shared the
	// consumer, rounds like these had one do so within a few rounds.
	before := eventlog.OutOfOrder("intake")
	for round := range maxOrderRounds {
		ids = append(ids, e.interleave(round)...)
		e.waitApplied(ids)
	}
	if n := eventlog.OutOfOrder("intake") - before; n != 0 {
		t.Fatalf("%d events reached a replica ahead of an earlier one of their issue; each partition should have one owner", n)
	}
	want := []string{"raised", "routed", "acknowledged", "resolved", "acknowledged", "resolved"}
	for _, id := range ids {
		is, err := e.store().Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, entry := range is.Timeline {
			kinds = append(kinds, entry.Kind)
		}
		if !slices.Equal(kinds, want) || is.Status != domain.StatusResolved {
			t.Errorf("%s: timeline %v and status %s; want %v and resolved", id, kinds, is.Status, want)
		}
	}
}

// maxOrderRounds bounds the rounds a replica-order test sends while waiting for an event to reach a
// replica out of order.
const maxOrderRounds = 20

// interleave raises ten issues and appends each one's whole life, interleaved with the others'.
func (e *env) interleave(round int) []string {
	var ids []string
	for i := range 10 {
		ids = append(ids, e.raise(taoyuanWorker, fmt.Sprint("order-", round, "-", i)).GetId())
	}
	for _, id := range ids {
		e.route(id)
		for _, dept := range []string{"water", "power"} {
			e.appendEvent(id, "acknowledged."+dept, service(dept), func(ev *whistlev1.Event) {
				ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: dept}}
			})
			e.appendEvent(id, "resolved."+dept, service(dept), func(ev *whistlev1.Event) {
				ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: dept, Note: "done"}}
			})
		}
	}
	return ids
}

func TestWatchingAnIssueDeliversEntriesAsTheyAreAppended(t *testing.T) {
	e := start(t)
	id := e.raise(taoyuanWorker, "watch-1").GetId()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a missed entry fails instead of hanging
	defer cancel()
	stream, err := e.client(taoyuanWorker).WatchIssue(ctx, &whistlev1.WatchIssueRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetEntry().GetKind() != "raised" || first.GetIssue().GetId() != id {
		t.Fatalf("first: %v, %v", first, err)
	}
	e.route(id)
	second, err := stream.Recv()
	if err != nil || second.GetEntry().GetKind() != "routed" || second.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED {
		t.Fatalf("second: %v, %v", second, err)
	}
	e.appendEvent(id, "acknowledged.water", person(waterOfficer), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water"}}
	})
	third, err := stream.Recv()
	if err != nil || third.GetEntry().GetKind() != "acknowledged" || third.GetEntry().GetSeq() <= second.GetEntry().GetSeq() ||
		third.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_IN_PROGRESS {
		t.Fatalf("third: %v, %v", third, err)
	}
}

func TestAWatchShowsAnEventOnceTheConsumerAppliesItAndReadsWriteNothing(t *testing.T) {
	e := start(t)
	id := e.raise(taoyuanWorker, "watch-behind").GetId()
	e.stop() // the consumer falls behind: what is appended now is only in the stream
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := e.client(taoyuanWorker).WatchIssue(ctx, &whistlev1.WatchIssueRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := stream.Recv(); err != nil || first.GetEntry().GetKind() != "raised" {
		t.Fatalf("first: %v, %v", first, err)
	}
	e.route(id)
	// The watch follows the routing event but waits for the view; neither it nor a read applies
	// the event to the view.
	got, err := e.client(cityDesk).GetIssue(ctx, &whistlev1.GetIssueRequest{Id: id})
	if err != nil || got.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_RAISED {
		t.Fatalf("GetIssue with the consumer stopped = %v, %v; want the issue as the view holds it, raised", got, err)
	}
	e.replica()
	second, err := stream.Recv()
	if err != nil || second.GetEntry().GetKind() != "routed" || second.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED {
		t.Fatalf("second: %v, %v; want the routing once the consumer applied it", second, err)
	}
}

func TestGettingARaiseTheViewHasNotAppliedYetWaitsForTheConsumer(t *testing.T) {
	e := start(t)
	e.stop()
	id := e.raise(taoyuanWorker, "raised-elsewhere").GetId()         // as another replica answers a raise
	if err := e.Deps.Redis.FlushAll(t.Context()).Err(); err != nil { // its view has not reached this one's
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := e.client(taoyuanWorker).GetIssue(context.Background(), &whistlev1.GetIssueRequest{Id: id})
		got <- err
	}()
	e.replica()
	if err := <-got; err != nil {
		t.Fatalf("GetIssue of a raise in the stream: %v; want the issue once the consumer applied it", err)
	}
	if _, err := e.client(taoyuanWorker).GetIssue(context.Background(), &whistlev1.GetIssueRequest{Id: "QQQQ-QQQQ"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetIssue of a case the stream does not hold: %v; want NotFound", err)
	}
}

func TestAWatchWhoseEventStreamStopsEndsAsUnavailable(t *testing.T) {
	e := start(t)
	id := e.raise(taoyuanWorker, "watch-lost").GetId()
	e.stop() // the consumer would fail on the closed connection too; only the watch is under test
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := e.client(taoyuanWorker).WatchIssue(ctx, &whistlev1.WatchIssueRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := stream.Recv(); err != nil || first.GetEntry().GetKind() != "raised" {
		t.Fatalf("first: %v, %v", first, err)
	}
	e.Deps.NATS.Close()
	if resp, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("after the stream stopped: %v, %v; want Unavailable", resp, err)
	}
}

func TestListingPagesThroughEveryIssueExactlyOnceNewestFirst(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	workers := []struct{ p, q string }{{"xinhua-taoyuan-01", "noise"}, {"xinhua-hebin-01", "noise"}, {"dongfeng-jinqiao-01", "road-damage"}}
	var raised []string
	for i := range 23 {
		w := workers[i%len(workers)]
		p := taoyuanWorker
		p.Subject, p.Scope = fmt.Sprintf("worker-%d", i%len(workers)), w.p
		resp, err := e.client(p).RaiseIssue(ctx, &whistlev1.RaiseIssueRequest{RequestId: fmt.Sprint(i), GridId: w.p, CategoryId: w.q, Text: "Issue"})
		if err != nil {
			t.Fatal(err)
		}
		raised = append(raised, resp.GetIssue().GetId())
		if i%2 == 0 { // every other pair shares a millisecond, so ties are paged too
			e.Clock.Advance(time.Millisecond)
		}
	}
	c := e.client(cityDesk)
	list := func(t *testing.T, req *whistlev1.ListIssuesRequest) []*whistlev1.Issue {
		t.Helper()
		var all []*whistlev1.Issue
		for {
			resp, err := c.ListIssues(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, resp.GetIssues()...)
			if resp.GetNextPageToken() == "" {
				return all
			}
			if len(resp.GetIssues()) != int(req.GetPageSize()) {
				t.Fatalf("a page before the last has %d issues, want %d", len(resp.GetIssues()), req.GetPageSize())
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}

	all := list(t, &whistlev1.ListIssuesRequest{PageSize: 4})
	seen := map[string]bool{}
	for i, is := range all {
		if seen[is.GetId()] {
			t.Fatalf("%s listed twice", is.GetId())
		}
		seen[is.GetId()] = true
		// The lists are ordered by the millisecond the stream stored the raise (ties by case
		// number), so two raises within one millisecond may stand in either order of nanoseconds.
		if ms := func(k int) int64 { return all[k].GetRaisedAt().AsTime().UnixMilli() }; i > 0 && ms(i) > ms(i-1) {
			t.Fatalf("not newest first at %d", i)
		}
	}
	if len(seen) != len(raised) {
		t.Fatalf("listed %d issues, raised %d", len(seen), len(raised))
	}
	// The list is sharded by partition and read as one: its order is one key's, raise time
	// (to the millisecond) newest first and case numbers in reverse within a millisecond.
	want := slices.Clone(all)
	slices.SortStableFunc(want, func(a, b *whistlev1.Issue) int {
		if c := b.GetRaisedAt().AsTime().UnixMilli() - a.GetRaisedAt().AsTime().UnixMilli(); c != 0 {
			return int(c)
		}
		return strings.Compare(b.GetId(), a.GetId())
	})
	shards := map[int]bool{}
	for i := range all {
		shards[eventlog.Partition(all[i].GetId())] = true
		if all[i].GetId() != want[i].GetId() {
			t.Fatalf("listed %s at %d, want %s: the shards' merge is out of order", all[i].GetId(), i, want[i].GetId())
		}
	}
	if len(shards) < 2 {
		t.Fatalf("the issues fell in %d shard of the list; the test needs them spread", len(shards))
	}

	t.Run("filters by area, category and status", func(t *testing.T) {
		if n := len(list(t, &whistlev1.ListIssuesRequest{AreaId: "xinhua", PageSize: 3})); n != 16 {
			t.Fatalf("xinhua street: %d issues, want 16", n)
		}
		if n := len(list(t, &whistlev1.ListIssuesRequest{CategoryId: "road-damage", PageSize: 2})); n != 7 {
			t.Fatalf("road damage: %d issues, want 7", n)
		}
		e.route(raised[0])
		wait.For(t, 10*time.Second, 10*time.Millisecond, func() error {
			got := list(t, &whistlev1.ListIssuesRequest{Status: whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED, PageSize: 5})
			if len(got) != 1 || got[0].GetId() != raised[0] {
				return fmt.Errorf("dispatched: %d issues", len(got))
			}
			return nil
		})
	})
	t.Run("a grid worker lists their own grid by default", func(t *testing.T) {
		resp, err := e.client(taoyuanWorker).ListIssues(ctx, &whistlev1.ListIssuesRequest{})
		if err != nil || len(resp.GetIssues()) != 8 || resp.GetNextPageToken() != "" {
			t.Fatalf("got %d issues, token %q, %v; want 8 on one page", len(resp.GetIssues()), resp.GetNextPageToken(), err)
		}
	})
	t.Run("refuses areas outside the scope, officers and bad pages", func(t *testing.T) {
		cases := []struct {
			name string
			c    whistlev1.IntakeServiceClient
			req  *whistlev1.ListIssuesRequest
			code codes.Code
		}{
			{"a grid worker asking for the city", e.client(taoyuanWorker), &whistlev1.ListIssuesRequest{AreaId: "city"}, codes.PermissionDenied},
			{"a duty officer", e.client(waterOfficer), &whistlev1.ListIssuesRequest{}, codes.PermissionDenied},
			{"a page size over the limit", c, &whistlev1.ListIssuesRequest{PageSize: 201}, codes.InvalidArgument},
			{"a negative page size", c, &whistlev1.ListIssuesRequest{PageSize: -1}, codes.InvalidArgument},
			{"a made-up page token", c, &whistlev1.ListIssuesRequest{PageToken: "!!"}, codes.InvalidArgument},
			{"an unknown area", c, &whistlev1.ListIssuesRequest{AreaId: "atlantis"}, codes.InvalidArgument},
			{"an area id of a megabyte", c, &whistlev1.ListIssuesRequest{AreaId: strings.Repeat("a", 1<<20)}, codes.InvalidArgument},
			{"an unknown category", c, &whistlev1.ListIssuesRequest{CategoryId: "ghosts"}, codes.InvalidArgument},
			{"an undefined status", c, &whistlev1.ListIssuesRequest{Status: 42}, codes.InvalidArgument},
		}
		for _, tc := range cases {
			_, err := tc.c.ListIssues(ctx, tc.req)
			if status.Code(err) != tc.code || len(status.Convert(err).Message()) > maxErrorMessage {
				t.Errorf("%s: got %.200v, want a short %v", tc.name, err, tc.code)
			}
		}
	})
}

func TestWipingRedisAndReplayingRebuildsAnIdenticalView(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	c := e.client(cityDesk)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.raise(taoyuanWorker, fmt.Sprint("replay-", i)).GetId())
		e.Clock.Advance(time.Second)
	}
	e.route(ids[0])
	e.appendEvent(ids[0], "acknowledged.water", person(waterOfficer), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water"}}
	})
	e.appendEvent(ids[1], "needs-dispatch", service("routing"), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_NeedsDispatch{NeedsDispatch: &whistlev1.IssueNeedsDispatch{Reason: "no rule"}}
	})
	e.waitApplied(ids)
	before := map[string]*whistlev1.GetIssueResponse{}
	for _, id := range ids {
		resp, err := c.GetIssue(ctx, &whistlev1.GetIssueRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		before[id] = resp
	}
	listBefore, err := c.ListIssues(ctx, &whistlev1.ListIssuesRequest{})
	if err != nil {
		t.Fatal(err)
	}

	e.stop()
	if err := platform.Reset(ctx, e.Deps, e.svc); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Deps.Redis.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("after reset Redis holds %d keys, %v", n, err)
	}
	e.run()
	e.waitApplied(ids)

	for _, id := range ids {
		resp, err := c.GetIssue(ctx, &whistlev1.GetIssueRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(resp, before[id]) {
			t.Fatalf("%s after replay:\n%v\nbefore:\n%v", id, resp, before[id])
		}
	}
	listAfter, err := c.ListIssues(ctx, &whistlev1.ListIssuesRequest{})
	if err != nil || !proto.Equal(listAfter, listBefore) {
		t.Fatalf("list after replay differs: %v", err)
	}
}

// waitApplied waits until the service's own view has applied every event of the issues, read
// straight from Redis so that nothing but the consumer can have brought it there.
func (e *env) waitApplied(ids []string) {
	e.T.Helper()
	ctx := context.Background()
	wait.For(e.T, 10*time.Second, 10*time.Millisecond, func() error {
		for _, id := range ids {
			last, err := e.Deps.Log.Last(ctx, id)
			if err != nil {
				return err
			}
			pos, err := e.store().Position(ctx, id)
			if err != nil {
				return err
			}
			if applied := pos.LastSeq; applied != last {
				return fmt.Errorf("%s applied to %d of %d", id, applied, last)
			}
		}
		if n, err := listed(ctx, e.Deps.Redis, "city"); err != nil || n != int64(len(ids)) {
			return errors.Join(fmt.Errorf("city list holds %d issues", n), err)
		}
		return nil
	})
}

// listed counts the issues of an area's list, over every shard.
func listed(ctx context.Context, rdb redis.UniversalClient, area string) (int64, error) {
	var n int64
	for p := range eventlog.Partitions {
		c, err := rdb.ZCard(ctx, store.ListKey(area, p)).Result()
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}
