package routing

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

// harness is a routing service on real NATS and Redis, with a fake clock, served over gRPC.
type harness struct {
	*servicetest.Env
	svc  *Service
	stop func() // stops svc
	addr string
}

// epoch is when every test begins, by the fake clock.
var epoch = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// start runs the service and its gRPC server for one test.
func start(t *testing.T) *harness {
	t.Helper()
	h := &harness{Env: servicetest.NewEnv(t, epoch)}
	h.svc, h.stop = h.run(Config{})
	h.addr = h.Serve(h.svc.Register)
	return h
}

// run starts one more replica of the service, and returns it with the function that stops it; it
// also stops at the end of the test.
func (h *harness) run(cfg Config) (*Service, func()) {
	h.T.Helper()
	svc, err := New(h.Deps, cfg)
	if err != nil {
		h.T.Fatal(err)
	}
	return svc, h.Run(svc)
}

// client calls the service as p; a zero p calls without a token.
func (h *harness) client(p authx.Principal) whistlev1.RoutingServiceClient {
	return whistlev1.NewRoutingServiceClient(h.Dial(h.addr, p))
}

// raise appends a raised event as intake would, and returns the case number.
func (h *harness) raise(key, grid, category string, urgency whistlev1.Urgency) string {
	h.T.Helper()
	id := casenum.FromKey(key)
	_, community, street, err := h.Deps.Catalog.Grid(grid)
	if err != nil {
		h.T.Fatal(err)
	}
	h.Append(&whistlev1.Event{
		Id: id + ".raised", IssueId: id,
		Actor: &whistlev1.Actor{Subject: "gw-1", Role: string(authx.RoleGridWorker), Scope: grid},
		Payload: &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{
			RequestId: key, GridId: grid, CommunityId: community.ID, StreetId: street.ID,
			CategoryId: category, Urgency: urgency, Text: "see for yourself",
		}},
	})
	return id
}

// decisions returns the issue's events that routing appended.
func (h *harness) decisions(id string) []*whistlev1.Event {
	h.T.Helper()
	recs, err := h.Deps.Log.Read(h.T.Context(), id, 0)
	if err != nil {
		h.T.Fatal(err)
	}
	var out []*whistlev1.Event
	for _, r := range recs {
		if r.Event.GetRouted() != nil || r.Event.GetNeedsDispatch() != nil {
			out = append(out, r.Event)
		}
	}
	return out
}

// decided waits for the issue's first routing decision and returns it.
func (h *harness) decided(id string) *whistlev1.Event {
	h.T.Helper()
	var ev *whistlev1.Event
	wait.For(h.T, 10*time.Second, 10*time.Millisecond, func() error {
		if d := h.decisions(id); len(d) > 0 {
			ev = d[0]
			return nil
		}
		return errors.New("no routing decision yet")
	})
	return ev
}

var worker = authx.Principal{Subject: "gw-1", Role: authx.RoleGridWorker, Scope: "xinhua-taoyuan-01"}

func TestExplainRouteNamesTheRuleTheDepartmentsAndTheirPolicies(t *testing.T) {
	t.Parallel()
	h := start(t)
	c := h.client(worker)
	for _, tc := range []struct {
		name, grid, category string
		urgency              whistlev1.Urgency
		rule, street         string
		departments          []string
		reportIn             time.Duration
	}{
		{"a city-wide rule", "xinhua-taoyuan-01", "blocked-drain", whistlev1.Urgency_URGENCY_UNSPECIFIED, "blocked-drain", "xinhua", []string{"water", "urban-management"}, time.Hour},
		{"the urgent policy", "xinhua-taoyuan-01", "blocked-drain", whistlev1.Urgency_URGENCY_URGENT, "blocked-drain", "xinhua", []string{"water", "urban-management"}, 30 * time.Minute},
		{"a street's own rule", "hexi-binjiang-02", "sanitation", whistlev1.Urgency_URGENCY_NORMAL, "sanitation-hexi", "hexi", []string{"greening", "urban-management"}, 4 * time.Hour},
		{"the city rule elsewhere", "dongfeng-jinqiao-01", "sanitation", whistlev1.Urgency_URGENCY_NORMAL, "sanitation", "dongfeng", []string{"urban-management", "environment"}, 4 * time.Hour},
		{"a joint whistle", "xinhua-hebin-02", "gas-leak", whistlev1.Urgency_URGENCY_EMERGENCY, "gas-leak", "xinhua", []string{"gas", "fire-rescue", "emergency"}, 30 * time.Minute},
		{"no rule", "xinhua-hebin-02", "other", whistlev1.Urgency_URGENCY_NORMAL, "", "xinhua", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.ExplainRoute(t.Context(), &whistlev1.ExplainRouteRequest{GridId: tc.grid, CategoryId: tc.category, Urgency: tc.urgency})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetMatched() != (tc.rule != "") || resp.GetRuleId() != tc.rule || resp.GetStreetId() != tc.street || resp.GetExplanation() == "" {
				t.Fatalf("got %v; want rule %q in street %q with an explanation", resp, tc.rule, tc.street)
			}
			var depts []string
			for i, a := range resp.GetAssignments() {
				depts = append(depts, a.GetDepartmentId())
				if lead := a.GetRole() == whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD; lead != (i == 0) {
					t.Errorf("assignment %d (%s) has role %v", i, a.GetDepartmentId(), a.GetRole())
				}
				if got := a.GetPolicy().GetReportInWithin().AsDuration(); got != tc.reportIn {
					t.Errorf("%s reports in within %s; want %s", a.GetDepartmentId(), got, tc.reportIn)
				}
			}
			if fmt.Sprint(depts) != fmt.Sprint(tc.departments) {
				t.Errorf("departments %v; want %v", depts, tc.departments)
			}
		})
	}
	if recs, err := h.Deps.Log.StreamInfo(t.Context()); err != nil || recs.State.Msgs != 0 {
		t.Errorf("a dry run wrote to the stream: %v, %v", recs, err)
	}
}

func TestExplainRouteRejectsBadRequestsNamingTheField(t *testing.T) {
	t.Parallel()
	h := start(t)
	c := h.client(worker)
	for _, tc := range []struct {
		req   *whistlev1.ExplainRouteRequest
		field string
	}{
		{&whistlev1.ExplainRouteRequest{CategoryId: "noise"}, "grid_id"},
		{&whistlev1.ExplainRouteRequest{GridId: "xinhua", CategoryId: "noise"}, "grid_id"}, // a street, not a grid
		{&whistlev1.ExplainRouteRequest{GridId: "atlantis-01", CategoryId: "noise"}, "grid_id"},
		{&whistlev1.ExplainRouteRequest{GridId: "xinhua-taoyuan-01"}, "category_id"},
		{&whistlev1.ExplainRouteRequest{GridId: "xinhua-taoyuan-01", CategoryId: "ufo"}, "category_id"},
		{&whistlev1.ExplainRouteRequest{GridId: "xinhua-taoyuan-01", CategoryId: "noise", Urgency: 42}, "urgency"},
		{&whistlev1.ExplainRouteRequest{GridId: "xinhua-taoyuan-01", CategoryId: "noise", Urgency: -1}, "urgency"},
		{&whistlev1.ExplainRouteRequest{GridId: strings.Repeat("g", 1<<20), CategoryId: "noise"}, "grid_id"},
		{&whistlev1.ExplainRouteRequest{GridId: "xinhua-taoyuan-01", CategoryId: strings.Repeat("c", 1<<20)}, "category_id"},
	} {
		_, err := c.ExplainRoute(t.Context(), tc.req)
		msg := status.Convert(err).Message()
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(msg, tc.field+": ") {
			t.Errorf("ExplainRoute(%.200v) = %.200v; want InvalidArgument naming %s", tc.req, err, tc.field)
		}
		if len(msg) > 300 {
			t.Errorf("ExplainRoute naming %s echoes %d characters back", tc.field, len(msg))
		}
	}
	if _, err := h.client(authx.Principal{}).ExplainRoute(t.Context(), &whistlev1.ExplainRouteRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without a token: %v; want Unauthenticated", err)
	}
}

func TestTheCatalogListsServeAnyCaller(t *testing.T) {
	t.Parallel()
	h := start(t)
	c := h.client(authx.Principal{Subject: "o-1", Role: authx.RoleOfficer, Scope: "water"})
	areas, err := c.ListAreas(t.Context(), &whistlev1.ListAreasRequest{})
	if err != nil || len(areas.GetAreas()) == 0 || areas.GetAreas()[0].GetId() != catalog.CityScope {
		t.Fatalf("ListAreas = %v, %v; want the city first", areas, err)
	}
	depts, err := c.ListDepartments(t.Context(), &whistlev1.ListDepartmentsRequest{})
	if err != nil || len(depts.GetDepartments()) != len(h.Deps.Catalog.Departments()) {
		t.Fatalf("ListDepartments = %v, %v", depts, err)
	}
	cats, err := c.ListCategories(t.Context(), &whistlev1.ListCategoriesRequest{})
	if err != nil || len(cats.GetCategories()) != len(h.Deps.Catalog.Categories()) || cats.GetCategories()[0].GetEmergency().GetResolveWithin() == nil {
		t.Fatalf("ListCategories = %v, %v", cats, err)
	}
}

func TestARaisedIssueIsRoutedOnceWithItsDeadlinesFrozen(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.Clock.Set(epoch.Add(time.Minute))
	id := h.raise("drain-1", "xinhua-taoyuan-01", "blocked-drain", whistlev1.Urgency_URGENCY_URGENT)
	ev := h.decided(id)
	h.Settled(Name)
	if n := len(h.decisions(id)); n != 1 {
		t.Fatalf("%d routing events; want 1", n)
	}
	now := epoch.Add(time.Minute)
	raisedAt := h.Stored(id, "raised").Time // deadlines run from when the stream stored the raise
	if ev.GetId() != id+".1.routed" || ev.GetCorrelationId() != id || ev.GetActor().GetSubject() != "routing" ||
		ev.GetActor().GetRole() != "service" || !ev.GetOccurredAt().AsTime().Equal(now) || ev.GetRouted().GetRuleId() != "blocked-drain" {
		t.Fatalf("routed event %v", ev)
	}
	ds := ev.GetRouted().GetDispatches()
	if len(ds) != 2 || ds[0].GetDepartmentId() != "water" || ds[0].GetRole() != whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD ||
		ds[1].GetDepartmentId() != "urban-management" || ds[1].GetRole() != whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING {
		t.Fatalf("dispatches %v; want water leading, urban-management assisting", ds)
	}
	for _, d := range ds {
		if !d.GetReportInBy().AsTime().Equal(raisedAt.Add(30*time.Minute)) || !d.GetResolveBy().AsTime().Equal(raisedAt.Add(8*time.Hour)) ||
			d.GetPolicy().GetResolveWithin().AsDuration() != 8*time.Hour {
			t.Errorf("dispatch %v; want the urgent utility policy frozen from the raise at %s", d, raisedAt)
		}
	}
}

func TestAnIssueNoRuleCoversWaitsForADispatcher(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.raise("other-1", "dongfeng-yuanlin-02", "other", whistlev1.Urgency_URGENCY_NORMAL)
	ev := h.decided(id)
	if ev.GetId() != id+".1.needs-dispatch" || !strings.Contains(ev.GetNeedsDispatch().GetReason(), "no rule") {
		t.Fatalf("decision %v; want needs-dispatch with a reason", ev)
	}
}

func TestRedeliveryAndReplayAppendNothingTwice(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.raise("drain-2", "xinhua-taoyuan-02", "blocked-drain", whistlev1.Urgency_URGENCY_NORMAL)
	h.decided(id)
	h.Settled(Name)
	recs, err := h.Deps.Log.Read(t.Context(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A consumer that dies before acknowledging gets the raise again, after a later clock too.
	h.Clock.Advance(time.Hour)
	handler := h.Deps.Log.Project(h.svc.store, h.svc.app.React)
	for range 2 {
		if err := handler(t.Context(), recs[0]); err != nil {
			t.Fatal(err)
		}
	}
	before := h.snapshot()
	// A wiped projection replays the whole stream, with the decision already in it.
	h.stop()
	if err := platform.Reset(t.Context(), h.Deps, h.svc); err != nil {
		t.Fatal(err)
	}
	if err := handler(t.Context(), recs[0]); err != nil {
		t.Fatal(err)
	}
	h.run(Config{})
	h.Settled(Name)
	if n := len(h.decisions(id)); n != 1 {
		t.Fatalf("%d routing events after redelivery and replay; want 1", n)
	}
	if after := h.snapshot(); !maps.Equal(after, before) {
		t.Fatalf("Redis after replay\n%v\nwant\n%v", after, before)
	}
	st, err := h.svc.store.Get(t.Context(), id)
	if err != nil || !st.Routed || st.LastSeq != recs[len(recs)-1].Seq {
		t.Fatalf("state after replay %+v, %v; want routed at seq %d", st, err, recs[len(recs)-1].Seq)
	}
}

// snapshot reads every key routing keeps in Redis with its value.
func (h *harness) snapshot() map[string]string {
	h.T.Helper()
	keys, err := h.Deps.Redis.Keys(h.T.Context(), Name+":*").Result()
	if err != nil {
		h.T.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		v, err := h.Deps.Redis.Get(h.T.Context(), k).Result()
		if err != nil {
			h.T.Fatal(err)
		}
		out[k] = redistest.Value(k, v)
	}
	return out
}

func TestARulesChangeRoutesNewIssuesOnlyAndKeepsFrozenDecisions(t *testing.T) {
	t.Parallel()
	h := start(t)
	old := h.raise("frozen-1", "xinhua-taoyuan-01", "blocked-drain", whistlev1.Urgency_URGENCY_NORMAL)
	decided := h.decided(old)
	h.Settled(Name)

	// The city hands blocked drains to housing from now on; the new rules start on a wiped
	// projection, so they meet the old raise again while replaying.
	h.stop()
	if err := platform.Reset(t.Context(), h.Deps, h.svc); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  - {id: drains-to-housing, category: blocked-drain, lead: housing}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(24 * time.Hour)
	h.run(Config{RulesPath: path})
	fresh := h.raise("frozen-2", "xinhua-taoyuan-01", "blocked-drain", whistlev1.Urgency_URGENCY_NORMAL)
	ds := h.decided(fresh).GetRouted().GetDispatches()
	if len(ds) != 1 || ds[0].GetDepartmentId() != "housing" || !ds[0].GetReportInBy().AsTime().Equal(h.Stored(fresh, "raised").Time.Add(time.Hour)) {
		t.Fatalf("a new issue was dispatched to %v; want housing alone, by the new rules from its raise", ds)
	}
	h.Settled(Name)
	if got := h.decisions(old); len(got) != 1 || !proto.Equal(got[0], decided) {
		t.Fatalf("the old issue's decisions after the change: %v; want only %v", got, decided)
	}
}

func TestTwoReplicasRouteFiftyIssuesExactlyOnceEach(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.run(Config{})
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = h.raise(fmt.Sprintf("bulk-%d", i), "hexi-binjiang-01", "unsafe-stall", whistlev1.Urgency_URGENCY_NORMAL)
	}
	for _, id := range ids {
		h.decided(id)
	}
	h.Settled(Name)
	routed := 0
	for _, id := range ids {
		d := h.decisions(id)
		if len(d) != 1 || d[0].GetRouted() == nil {
			t.Errorf("%s: %d decisions %v; want one routed", id, len(d), d)
		}
		routed += len(d)
	}
	if routed != len(ids) {
		t.Fatalf("%d routed events for %d issues", routed, len(ids))
	}
}
