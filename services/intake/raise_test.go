package intake_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
)

func TestRaisingRejectsEachBadFieldAndWritesNothing(t *testing.T) {
	e := start(t)
	c := e.client(taoyuanWorker)
	valid := func() *whistlev1.RaiseIssueRequest {
		return &whistlev1.RaiseIssueRequest{
			RequestId: "req-1", GridId: taoyuanWorker.Scope, CategoryId: "noise", Text: "Drilling at night",
			Location: &whistlev1.Location{Latitude: 31.2, Longitude: 121.5, Address: "No. 3 Taoyuan Road"},
		}
	}
	tests := []struct {
		name  string
		field string
		edit  func(*whistlev1.RaiseIssueRequest)
	}{
		{"a request id with a space", "request_id", func(r *whistlev1.RaiseIssueRequest) { r.RequestId = "req 1" }},
		{"a request id of 65 characters", "request_id", func(r *whistlev1.RaiseIssueRequest) { r.RequestId = strings.Repeat("r", 65) }},
		{"no grid", "grid_id", func(r *whistlev1.RaiseIssueRequest) { r.GridId = "" }},
		{"an unknown grid", "grid_id", func(r *whistlev1.RaiseIssueRequest) { r.GridId = "atlantis-01" }},
		{"a grid id of a megabyte", "grid_id", func(r *whistlev1.RaiseIssueRequest) { r.GridId = strings.Repeat("g", 1<<20) }},
		{"a community instead of a grid", "grid_id", func(r *whistlev1.RaiseIssueRequest) { r.GridId = "xinhua-taoyuan" }},
		{"no category", "category_id", func(r *whistlev1.RaiseIssueRequest) { r.CategoryId = "" }},
		{"an unknown category", "category_id", func(r *whistlev1.RaiseIssueRequest) { r.CategoryId = "ghosts" }},
		{"a category id of a megabyte", "category_id", func(r *whistlev1.RaiseIssueRequest) { r.CategoryId = strings.Repeat("c", 1<<20) }},
		{"an undefined urgency", "urgency", func(r *whistlev1.RaiseIssueRequest) { r.Urgency = 42 }},
		{"blank text", "text", func(r *whistlev1.RaiseIssueRequest) { r.Text = " \n\t " }},
		{"text over the limit", "text", func(r *whistlev1.RaiseIssueRequest) { r.Text = strings.Repeat("水", 2001) }},
		{"a latitude past the pole", "location.latitude", func(r *whistlev1.RaiseIssueRequest) { r.Location.Latitude = 90.5 }},
		{"a longitude past the date line", "location.longitude", func(r *whistlev1.RaiseIssueRequest) { r.Location.Longitude = -181 }},
		{"an address over the limit", "location.address", func(r *whistlev1.RaiseIssueRequest) { r.Location.Address = strings.Repeat("a", 201) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := valid()
			tt.edit(req)
			_, err := c.RaiseIssue(context.Background(), req)
			msg := status.Convert(err).Message()
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(msg, tt.field+":") {
				t.Fatalf("got %.200v, want InvalidArgument naming %s", err, tt.field)
			}
			if len(msg) > maxErrorMessage {
				t.Fatalf("the error echoes %d characters back", len(msg))
			}
			if n := e.streamMessages(); n != 0 {
				t.Fatalf("the stream holds %d events after a bad raise, want 0", n)
			}
		})
	}
	t.Run("text of exactly the limit in characters after trimming is accepted", func(t *testing.T) {
		req := valid()
		req.Text = "  " + strings.Repeat("水", 2000) + "\n"
		resp, err := c.RaiseIssue(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetIssue(); got.GetText() != strings.TrimSpace(req.Text) || got.GetUrgency() != whistlev1.Urgency_URGENCY_NORMAL {
			t.Fatalf("got text of %d bytes with urgency %v, want the trimmed text with normal urgency", len(got.GetText()), got.GetUrgency())
		}
	})
}

func TestRaisingWithoutATokenIsUnauthenticated(t *testing.T) {
	e := start(t)
	c := e.client(taoyuanWorker)
	_, err := c.RaiseIssue(context.Background(), &whistlev1.RaiseIssueRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("with a token: got %v, want InvalidArgument", err)
	}
	noToken := e.client(authx.Principal{})
	if _, err := noToken.RaiseIssue(context.Background(), &whistlev1.RaiseIssueRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("without a token: got %v, want Unauthenticated", err)
	}
}

func TestRaisingWithoutARequestIDPicksOneAndRecordsTheRaise(t *testing.T) {
	e := start(t)
	resp, err := e.client(taoyuanWorker).RaiseIssue(context.Background(), &whistlev1.RaiseIssueRequest{
		GridId: taoyuanWorker.Scope, CategoryId: "gas-leak", Urgency: whistlev1.Urgency_URGENCY_EMERGENCY, Text: "Smell of gas",
	})
	if err != nil {
		t.Fatal(err)
	}
	is := resp.GetIssue()
	if resp.GetReplayed() || is.GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_RAISED || is.GetStreetId() != "xinhua" ||
		is.GetCommunityId() != "xinhua-taoyuan" || is.GetRaisedBy() != taoyuanWorker.Subject ||
		!is.GetRaisedAt().AsTime().Equal(e.Stored(is.GetId(), "raised").Time) {
		t.Fatalf("got %v", resp)
	}
	recs, err := e.Deps.Log.Read(context.Background(), is.GetId(), 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("read: %d records, %v", len(recs), err)
	}
	ev := recs[0].Event
	if ev.GetId() != is.GetId()+".0.raised" || ev.GetCorrelationId() != is.GetId() || ev.GetRaised().GetRequestId() == "" {
		t.Fatalf("raised event: %v", ev)
	}
}

func TestARetriedRaiseReturnsTheSameIssueAndWritesOneEvent(t *testing.T) {
	for _, between := range []string{"", "Redis wiped", "the service restarted", "the service restarted and owning the partition"} {
		name := "with the view kept"
		if between != "" {
			name = "with " + between + " between the calls"
		}
		t.Run(name, func(t *testing.T) {
			e := start(t)
			first := e.raise(taoyuanWorker, "retry-1")
			switch between {
			case "Redis wiped":
				flushRedis(t, e.Deps.Redis)
			case "the service restarted", "the service restarted and owning the partition":
				// A new process holds nothing in memory: its first round takes the case as new,
				// and the stream's refusal sends it to what was stored.
				e.stop()
				e.svc = e.newService()
				e.run()
				e.addr = e.Serve(e.svc.Register)
				if between == "the service restarted and owning the partition" {
					// Another raise of the case's partition makes the new process its owner,
					// which the refused retry then waits on: it must find the case applied
					// long before, not wait for the owner to apply it again.
					for i := 0; ; i++ {
						other := fmt.Sprintf("other-%d", i)
						if eventlog.Partition(casenum.FromKey(taoyuanWorker.Subject+"/"+other)) == eventlog.Partition(first.GetId()) {
							e.raise(taoyuanWorker, other)
							break
						}
					}
				}
			}
			e.Clock.Advance(1)
			ctx, cancel := context.WithTimeout(context.Background(), eventlog.MaxAwaitOwner/2)
			defer cancel()
			resp, err := e.client(taoyuanWorker).RaiseIssue(ctx, &whistlev1.RaiseIssueRequest{
				RequestId: "retry-1", GridId: taoyuanWorker.Scope, CategoryId: "blocked-drain", Text: "The drain outside no. 12 overflows",
			})
			if err != nil {
				t.Fatal(err)
			}
			if !resp.GetReplayed() || resp.GetIssue().GetId() != first.GetId() || !resp.GetIssue().GetRaisedAt().AsTime().Equal(first.GetRaisedAt().AsTime()) {
				t.Fatalf("retry: replayed=%v issue %v, want the first issue %v replayed", resp.GetReplayed(), resp.GetIssue(), first)
			}
			want := uint64(1)
			if between == "the service restarted and owning the partition" {
				want = 2 // and the other raise
			}
			if n := e.streamMessages(); n != want {
				t.Fatalf("the stream holds %d events, want %d", n, want)
			}
		})
	}
}

func TestARequestIDReusedWithADifferentRaiseIsRefusedNamingTheCaseAndTheField(t *testing.T) {
	e := start(t)
	// A worker of the whole community, so that a retry naming another grid is still in scope.
	worker := authx.Principal{Subject: "zhou", Role: authx.RoleGridWorker, Scope: "xinhua-taoyuan"}
	c := e.client(worker)
	same := func() *whistlev1.RaiseIssueRequest {
		return &whistlev1.RaiseIssueRequest{
			RequestId: "reuse-1", GridId: "xinhua-taoyuan-01", CategoryId: "blocked-drain", Text: "The drain outside no. 12 overflows",
		}
	}
	resp, err := c.RaiseIssue(context.Background(), same())
	if err != nil {
		t.Fatal(err)
	}
	first := resp.GetIssue()
	tests := []struct {
		field string
		edit  func(*whistlev1.RaiseIssueRequest)
	}{
		{"grid_id", func(r *whistlev1.RaiseIssueRequest) { r.GridId = "xinhua-taoyuan-02" }},
		{"category_id", func(r *whistlev1.RaiseIssueRequest) { r.CategoryId = "noise" }},
		{"urgency", func(r *whistlev1.RaiseIssueRequest) { r.Urgency = whistlev1.Urgency_URGENCY_URGENT }},
		{"text", func(r *whistlev1.RaiseIssueRequest) { r.Text = "The drain outside no. 14 overflows" }},
		{"location", func(r *whistlev1.RaiseIssueRequest) {
			r.Location = &whistlev1.Location{Latitude: 31.2, Longitude: 121.5}
		}},
	}
	for _, tt := range tests {
		t.Run("a different "+tt.field, func(t *testing.T) {
			req := same()
			tt.edit(req)
			_, err := c.RaiseIssue(context.Background(), req)
			msg := status.Convert(err).Message()
			if status.Code(err) != codes.FailedPrecondition || !strings.Contains(msg, first.GetId()) || !strings.Contains(msg, "different "+tt.field) {
				t.Fatalf("got %v; want FailedPrecondition naming case %s and %s", err, first.GetId(), tt.field)
			}
			if n := e.streamMessages(); n != 1 {
				t.Fatalf("the stream holds %d events, want 1", n)
			}
		})
	}
	t.Run("the same raise, with its text in other blanks, is a retry", func(t *testing.T) {
		req := same()
		req.Text = "  " + req.Text + "\n"
		resp, err := c.RaiseIssue(context.Background(), req)
		if err != nil || !resp.GetReplayed() || resp.GetIssue().GetId() != first.GetId() {
			t.Fatalf("got %v, %v; want the first issue %s replayed", resp, err, first.GetId())
		}
		if n := e.streamMessages(); n != 1 {
			t.Fatalf("the stream holds %d events, want 1", n)
		}
	})
}

func TestARaiseWhoseCaseNumberIsTakenByAnotherRequestIsRefused(t *testing.T) {
	e := start(t)
	first := e.raise(taoyuanWorker, "collide-1")
	// Stand in for a hash collision: rewrite the stored raise as if another request had made it.
	key := "intake:issue:{" + first.GetId() + "}"
	doc, err := e.Deps.Redis.Get(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	doc = strings.Replace(doc, `"request_id":"collide-1"`, `"request_id":"someone-else"`, 1)
	if err := e.Deps.Redis.Set(context.Background(), key, doc, 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = e.client(taoyuanWorker).RaiseIssue(context.Background(), &whistlev1.RaiseIssueRequest{
		RequestId: "collide-1", GridId: taoyuanWorker.Scope, CategoryId: "noise", Text: "again",
	})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("got %v, want AlreadyExists", err)
	}
	if n := e.streamMessages(); n != 1 {
		t.Fatalf("the stream holds %d events, want 1", n)
	}
}

func TestTwentyConcurrentRaisesWithOneRequestIDMakeOneIssue(t *testing.T) {
	e := start(t)
	c := e.client(taoyuanWorker)
	ids := make([]string, 20)
	errs := make([]error, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			resp, err := c.RaiseIssue(context.Background(), &whistlev1.RaiseIssueRequest{
				RequestId: "storm-1", GridId: taoyuanWorker.Scope, CategoryId: "noise", Text: "Loud music",
			})
			ids[i], errs[i] = resp.GetIssue().GetId(), err
		})
	}
	wg.Wait()
	for i := range 20 {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("raise %d: id %q, %v; want %q", i, ids[i], errs[i], ids[0])
		}
	}
	if n := e.streamMessages(); n != 1 {
		t.Fatalf("the stream holds %d events, want 1", n)
	}
}

func TestCallersOutsideTheGridAreDenied(t *testing.T) {
	e := start(t)
	is := e.raise(taoyuanWorker, "scoped-1")
	never := casenum.FromKey("never raised")
	ctx := context.Background()
	req := &whistlev1.RaiseIssueRequest{RequestId: "x", GridId: taoyuanWorker.Scope, CategoryId: "noise", Text: "Loud"}
	for _, p := range []struct {
		name string
		c    whistlev1.IntakeServiceClient
	}{{"a grid worker of another grid", e.client(hebinWorker)}, {"a duty officer", e.client(waterOfficer)}} {
		t.Run(p.name+" may not raise", func(t *testing.T) {
			if _, err := p.c.RaiseIssue(ctx, req); status.Code(err) != codes.PermissionDenied {
				t.Fatalf("got %v, want PermissionDenied", err)
			}
		})
		// An issue the caller may not see is answered exactly as one never raised, so that
		// nobody learns from the answer which case numbers exist.
		get := func(id string) error {
			_, err := p.c.GetIssue(ctx, &whistlev1.GetIssueRequest{Id: id})
			return err
		}
		watch := func(id string) error {
			stream, err := p.c.WatchIssue(ctx, &whistlev1.WatchIssueRequest{Id: id})
			if err == nil {
				_, err = stream.Recv()
			}
			return err
		}
		for verb, call := range map[string]func(string) error{"get": get, "watch": watch} {
			t.Run(p.name+" may not "+verb+" and cannot tell the issue exists", func(t *testing.T) {
				hidden, missing := status.Convert(call(is.GetId())), status.Convert(call(never))
				if hidden.Code() != codes.NotFound || missing.Code() != codes.NotFound {
					t.Fatalf("got %v for an issue out of scope and %v for one never raised; want NotFound for both", hidden.Err(), missing.Err())
				}
				if a, b := strings.ReplaceAll(hidden.Message(), is.GetId(), "<case>"), strings.ReplaceAll(missing.Message(), never, "<case>"); a != b {
					t.Fatalf("the answers differ: %q for an issue out of scope, %q for one never raised", a, b)
				}
			})
		}
	}
	t.Run("a dispatcher of the city may get", func(t *testing.T) {
		if _, err := e.client(cityDesk).GetIssue(ctx, &whistlev1.GetIssueRequest{Id: strings.ToLower(is.GetId())}); err != nil {
			t.Fatal(err)
		}
	})
	if n := e.streamMessages(); n != 1 {
		t.Fatalf("the stream holds %d events, want 1", n)
	}
}

// maxErrorMessage is the most a refusal may say: enough to name the field and the reason, never
// a copy of a caller's oversized input.
const maxErrorMessage = 300

func TestGettingChecksTheCaseNumber(t *testing.T) {
	e := start(t)
	c := e.client(cityDesk)
	for name, id := range map[string]string{"a short id": "K7M3", "no id": " ", "an id of a megabyte": strings.Repeat("K", 1<<20)} {
		_, err := c.GetIssue(context.Background(), &whistlev1.GetIssueRequest{Id: id})
		if msg := status.Convert(err).Message(); status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(msg, "id:") || len(msg) > maxErrorMessage {
			t.Errorf("%s: got %.200v, want a short InvalidArgument naming id", name, err)
		}
	}
	if _, err := c.GetIssue(context.Background(), &whistlev1.GetIssueRequest{Id: "K7M3-QX9A"}); status.Code(err) != codes.NotFound {
		t.Fatalf("an unknown id: got %v, want NotFound", err)
	}
}

func TestARaiseWhoseTextIsNotUTF8IsRefusedOverGRPCNamingTheField(t *testing.T) {
	e := start(t)
	c := e.client(taoyuanWorker)
	for _, tc := range []struct {
		field string
		req   *whistlev1.RaiseIssueRequest
	}{
		{"text", &whistlev1.RaiseIssueRequest{GridId: taoyuanWorker.Scope, CategoryId: "noise", Text: "Drain \xff\xfe blocked"}},
		{"location.address", &whistlev1.RaiseIssueRequest{GridId: taoyuanWorker.Scope, CategoryId: "noise", Text: "Loud",
			Location: &whistlev1.Location{Latitude: 22.7, Longitude: 110.3, Address: "No. 12 \xc3"}}},
	} {
		_, err := c.RaiseIssue(context.Background(), tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.field) {
			t.Errorf("a raise with %s not UTF-8: %v; want InvalidArgument naming %s", tc.field, err, tc.field)
		}
	}
	if head, _ := e.Deps.Log.Head(context.Background()); head != 0 {
		t.Fatalf("the stream holds %d events after refused raises", head)
	}
}
