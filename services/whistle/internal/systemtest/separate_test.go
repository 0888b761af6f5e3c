package systemtest

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/gateway"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// TestTheServicesRunAsSeparateProcessesOnSharedNATSAndRedis runs each service as
// `whistle serve NAME` does, on one external NATS and Redis, with a replica of department,
// and works an issue through them, each call to the process that serves that API.
// apart runs services as whistle serve NAME does, each a process of its own on one NATS and Redis,
// with tokens signed by the key in keys.
type apart struct {
	t                 *testing.T
	natsURL, redisURL string
	keys              string
	clk               clock.Clock
}

// newApart starts the NATS and Redis the processes share.
func newApart(t *testing.T, clk clock.Clock) *apart {
	return &apart{t: t, natsURL: natstest.RunServer(t).ClientURL(), redisURL: redistest.Run(t).URL(), keys: t.TempDir(), clk: clk}
}

// serve starts one service in a process of its own.
func (a *apart) serve(name string) *system.System {
	a.t.Helper()
	opts := Options(a.keys, a.clk)
	opts.NATSURL, opts.RedisURL, opts.Services = a.natsURL, a.redisURL, []string{name}
	ctx, cancel := context.WithTimeout(a.t.Context(), time.Minute)
	defer cancel()
	sys, err := system.Start(ctx, opts)
	if err != nil {
		a.t.Fatalf("serve %s: %v", name, err)
	}
	a.t.Cleanup(func() { Stop(a.t, sys) })
	return sys
}

func TestTheServicesRunAsSeparateProcessesOnSharedNATSAndRedis(t *testing.T) {
	a := newApart(t, clock.NewFake(Epoch))
	serve := a.serve
	intake, department := serve("intake"), serve("department")
	serve("routing")
	serve("department") // a second replica shares the consumer
	serve("escalation")

	worker := Dial(t, intake, GridWorker("dongfeng-jinqiao-01"))
	res, err := worker.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
		GridId: "dongfeng-jinqiao-01", CategoryId: "power-outage", Text: "No power in building 3 since noon",
	})
	if err != nil {
		t.Fatal(err)
	}
	id := res.GetIssue().GetId()
	issue := waitForStatus(t, worker, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id]
	dept := issue.GetAssignments()[0].GetUnitId()

	officer := Dial(t, department, Officer(dept))
	if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "Breaker reset"}); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, worker, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	if _, err := worker.Department.ListInbox(t.Context(), &whistlev1.ListInboxRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("the intake process answered the department API with %v; each process serves only its own", err)
	}
}

// TestAGatewayOfItsOwnServesOpen311AndTheConsoleInFrontOfServicesThatRunApart runs the gateway as
// whistle serve gateway does, with each service in a process of its own: an Open311 request
// becomes an issue, an officer signs in to the console and finds it in the inbox, and the
// gateway's /healthz names a service that stops answering.
func TestAGatewayOfItsOwnServesOpen311AndTheConsoleInFrontOfServicesThatRunApart(t *testing.T) {
	a := newApart(t, clock.Real())
	intake, routing, department, escalation := a.serve("intake"), a.serve("routing"), a.serve("department"), a.serve("escalation")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	gw, err := system.StartGateway(ctx, system.GatewayOptions{DataDir: a.keys, RedisURL: a.redisURL, Targets: gateway.Targets{
		Intake: intake.GRPCAddr(), Routing: routing.GRPCAddr(), Department: department.GRPCAddr(), Escalation: escalation.GRPCAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gw.Stop(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("stop the gateway: %v", err)
		}
	})
	health := "http://" + gw.HTTPAddr() + "/healthz"
	if body := get(t, http.DefaultClient, health, http.StatusOK); body != "ok" {
		t.Fatalf("the gateway's /healthz with every service up: %q", body)
	}

	key, err := intake.Authority().Mint(authx.Principal{Subject: "hotline-12345", Role: authx.RoleIntegrator, Scope: authx.CityScope}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	code, body := open311Call(t, gw, "POST", "requests.json", url.Values{"api_key": {key}, "service_code": {"blocked-drain"},
		"lat": {"22.7360"}, "long": {"110.3050"}, "description": {"Drain overflowing by the school gate"}})
	if code != http.StatusOK {
		t.Fatalf("POST requests.json through the gateway: %d %s", code, body)
	}
	id := decodeRequests(t, "json", body)[0].ID
	is := waitForStatus(t, Dial(t, intake, Supervisor()), []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id]
	if is.GetChannel() != whistlev1.Channel_CHANNEL_OPEN311 || is.GetRaisedBy() != "hotline-12345" {
		t.Errorf("the issue raised through the gateway is %v", is)
	}
	if code, body := open311Call(t, gw, "GET", "requests/"+id+".xml", nil); code != http.StatusOK || !strings.Contains(body, "<service_request_id>"+id+"</service_request_id>") {
		t.Errorf("GET requests/%s.xml through the gateway: %d %s", id, code, body)
	}

	// The officer's inbox is the department's, reached through the gateway's own connection to it.
	lead := is.GetAssignments()[0].GetUnitId()
	link, err := intake.Authority().MintLink(Officer(lead), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	officer := &http.Client{Jar: jar}
	page := get(t, officer, "http://"+gw.HTTPAddr()+system.ConsolePath+"login?link="+url.QueryEscape(link), http.StatusOK)
	if !strings.Contains(page, id) {
		t.Errorf("the officer's inbox through the gateway does not show %s:\n%s", id, page)
	}

	// A second gateway in front of the same services shares the limits through Redis: an address's
	// calls through both spend one burst, where each process counting alone would allow twice as many.
	second, err := system.StartGateway(ctx, system.GatewayOptions{DataDir: a.keys, RedisURL: a.redisURL, Targets: gateway.Targets{
		Intake: intake.GRPCAddr(), Routing: routing.GRPCAddr(), Department: department.GRPCAddr(), Escalation: escalation.GRPCAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Stop(context.WithoutCancel(t.Context())) })
	// Each gateway alone would answer all of these, a few short of its burst (the GET above spent
	// one of the first gateway's).
	calls, throttled := 2*(gateway.AnonymousBurst-2), 0
	for i := range calls {
		if code, _ := open311Call(t, []*system.Gateway{gw, second}[i%2], "GET", "discovery.json", nil); code == http.StatusTooManyRequests {
			throttled++
		}
	}
	if throttled == 0 {
		t.Errorf("%d anonymous calls from one address through two gateways were all answered: the limit is not shared", calls)
	}

	Stop(t, escalation)
	resp, err := http.Get(health)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "EscalationService") {
		t.Errorf("the gateway's /healthz with escalation stopped: %d %s; want 503 naming it", resp.StatusCode, b)
	}
}
