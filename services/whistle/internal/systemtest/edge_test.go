package systemtest

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.NewFake(Epoch))
	super := Dial(t, sys, Supervisor())
	routed, _ := routable(t, super)
	grid := "xinhua-taoyuan-01"
	worker := Dial(t, sys, GridWorker(grid))
	id := raise(t, worker, "bad-input-valid", grid, routed[0]).GetId()
	dept := waitForStatus(t, super, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id].GetAssignments()[0].GetUnitId()
	officer := Dial(t, sys, Officer(dept))
	cityWorker := Dial(t, sys, GridWorker(authx.CityScope))
	anonymous := Dial(t, sys, authx.Principal{})
	Settle(t, sys)
	events := StreamMessages(t, sys)

	// valid returns a request that would be accepted; each case breaks one thing, and
	// each has its own request id so that a wrongly accepted one would write.
	n := 0
	valid := func() *whistlev1.RaiseIssueRequest {
		n++
		return &whistlev1.RaiseIssueRequest{
			RequestId: fmt.Sprintf("bad-input-%d", n), GridId: grid, CategoryId: routed[0],
			Urgency: whistlev1.Urgency_URGENCY_NORMAL, Text: "a pothole by the school gate",
		}
	}
	raiseWith := func(c Clients, change func(*whistlev1.RaiseIssueRequest)) error {
		req := valid()
		change(req)
		_, err := c.Intake.RaiseIssue(t.Context(), req)
		return err
	}
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"empty text", func() error {
			return raiseWith(worker, func(r *whistlev1.RaiseIssueRequest) { r.Text = "" })
		}, codes.InvalidArgument},
		{"text of only spaces", func() error {
			return raiseWith(worker, func(r *whistlev1.RaiseIssueRequest) { r.Text = "   " })
		}, codes.InvalidArgument},
		{"text over 2000 characters", func() error {
			return raiseWith(worker, func(r *whistlev1.RaiseIssueRequest) { r.Text = strings.Repeat("路", 2001) })
		}, codes.InvalidArgument},
		{"unknown category", func() error {
			return raiseWith(worker, func(r *whistlev1.RaiseIssueRequest) { r.CategoryId = "volcano" })
		}, codes.InvalidArgument},
		{"unknown grid", func() error {
			return raiseWith(cityWorker, func(r *whistlev1.RaiseIssueRequest) { r.GridId = "atlantis-01" })
		}, codes.InvalidArgument},
		{"malformed case number", func() error {
			_, err := super.Intake.GetIssue(t.Context(), &whistlev1.GetIssueRequest{Id: "not a case!"})
			return err
		}, codes.InvalidArgument},
		{"resolve before acknowledge", func() error {
			_, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, UnitId: dept, Note: "done"})
			return err
		}, codes.FailedPrecondition},
		{"raise without a token", func() error {
			return raiseWith(anonymous, func(*whistlev1.RaiseIssueRequest) {})
		}, codes.Unauthenticated},
		{"acknowledge without a token", func() error {
			_, err := anonymous.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id, UnitId: dept})
			return err
		}, codes.Unauthenticated},
	}
	for _, tc := range tests {
		if got := status.Code(tc.call()); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	Settle(t, sys)
	if got := StreamMessages(t, sys); got != events {
		t.Errorf("refused calls wrote: the stream holds %d events, want %d", got, events)
	}
}

func TestTheGRPCServerOffersReflectionAndHealth(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.NewFake(Epoch))
	conn := DialConn(t, sys, authx.Principal{}) // reflection and health need no token

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	var listed []string
	for _, s := range res.GetListServicesResponse().GetService() {
		listed = append(listed, s.GetName())
	}
	for _, want := range []string{
		"whistle.v1.IntakeService", "whistle.v1.RoutingService", "whistle.v1.DepartmentService",
		"whistle.v1.EscalationService", "grpc.health.v1.Health",
	} {
		if !slices.Contains(listed, want) {
			t.Errorf("reflection lists %v, without %s", listed, want)
		}
	}

	health, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check: %v, %v; want SERVING", health.GetStatus(), err)
	}

	if code, body := httpGet(t, "http://"+sys.HTTPAddr()+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("GET /healthz: %d %q, want 200 \"ok\"", code, body)
	}

	super := Dial(t, sys, Supervisor())
	routed, _ := routable(t, super)
	grid := "hexi-binjiang-01"
	id := raise(t, Dial(t, sys, GridWorker(grid)), "metrics-traffic", grid, routed[0]).GetId()
	waitForStatus(t, super, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	wait.For(t, waitTotal, 100*time.Millisecond, func() error {
		code, body := httpGet(t, "http://"+sys.HTTPAddr()+"/metrics")
		if code != http.StatusOK || !strings.Contains(body, "whistle_events_processed") {
			return fmt.Errorf("GET /metrics: %d without whistle_events_processed", code)
		}
		return nil
	})
}

// httpGet returns the status code and body of a GET.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode, string(body)
}

func TestCommandsAndDecisionsAreCountedInMetricsByOutcome(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.NewFake(Epoch))
	super := Dial(t, sys, Supervisor())
	routed, _ := routable(t, super)
	grid := "hexi-binjiang-01"
	worker := Dial(t, sys, GridWorker(grid))
	id := raise(t, worker, "metrics-outcomes", grid, routed[0]).GetId()
	raise(t, worker, "metrics-outcomes", grid, routed[0]) // the same request again: replayed
	dept := waitForStatus(t, super, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id].GetAssignments()[0].GetUnitId()
	officer := Dial(t, sys, Officer(dept))
	if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "done"}); err != nil {
		t.Fatal(err)
	}

	// Counters are the process's, shared by every system a test starts, so each is checked for
	// being counted at all, by the attribute that names its outcome.
	_, body := httpGet(t, "http://"+sys.HTTPAddr()+"/metrics")
	for _, want := range []struct{ metric, attr string }{
		{"whistle_intake_raises_total", `outcome="raised"`},
		{"whistle_intake_raises_total", `outcome="replayed"`},
		{"whistle_routing_decisions_total", `outcome="routed"`},
		{"whistle_department_commands_total", `command="acknowledge"`},
		{"whistle_department_commands_total", `command="resolve"`},
	} {
		if !countedAtAll(body, want.metric, want.attr) {
			t.Errorf("/metrics counts nothing in %s{%s}", want.metric, want.attr)
		}
	}
}

// countedAtAll reports whether a Prometheus text exposition has a series of metric with attr
// whose value is above zero.
func countedAtAll(body, metric, attr string) bool {
	for line := range strings.Lines(body) {
		if !strings.HasPrefix(line, metric+"{") || !strings.Contains(line, attr) {
			continue
		}
		fields := strings.Fields(line)
		if v := fields[len(fields)-1]; v != "0" {
			return true
		}
	}
	return false
}
