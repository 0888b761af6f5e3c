package intake_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

// Callers used across the tests.
var (
	taoyuanWorker = authx.Principal{Subject: "wang", Role: authx.RoleGridWorker, Scope: "xinhua-taoyuan-01"}
	hebinWorker   = authx.Principal{Subject: "li", Role: authx.RoleGridWorker, Scope: "xinhua-hebin-01"}
	cityDesk      = authx.Principal{Subject: "zhao", Role: authx.RoleDispatcher, Scope: catalog.CityScope}
	waterOfficer  = authx.Principal{Subject: "chen", Role: authx.RoleOfficer, Scope: "water"}
	powerOfficer  = authx.Principal{Subject: "sun", Role: authx.RoleOfficer, Scope: "power"}
)

// env is a running intake service on real NATS and Redis, served over gRPC on loopback.
type env struct {
	*servicetest.Env
	svc  *intake.Service
	addr string
	stop func() // stops the consumer started by run
}

// start brings up NATS, Redis, the service (consuming) and its gRPC server.
func start(t *testing.T) *env {
	t.Helper()
	e := &env{Env: servicetest.NewEnv(t, time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC))}
	e.svc = e.newService()
	e.run()
	e.addr = e.Serve(e.svc.Register)
	return e
}

// newService returns one more instance of the service on the env's NATS and Redis.
func (e *env) newService() *intake.Service {
	e.T.Helper()
	svc, err := intake.New(e.Deps, intake.Config{})
	if err != nil {
		e.T.Fatal(err)
	}
	return svc
}

// run starts the service's consumer; stop ends it and waits until it has.
func (e *env) run() { e.stop = e.Run(e.svc) }

// replica starts one more instance of the service on the same NATS and Redis, consuming until the
// test ends, as a second process would.
func (e *env) replica() { e.Run(e.newService()) }

// client returns an IntakeService client that calls as p; a zero p calls without a token.
func (e *env) client(p authx.Principal) whistlev1.IntakeServiceClient {
	return whistlev1.NewIntakeServiceClient(e.Dial(e.addr, p))
}

// raise raises a valid issue in the caller's grid and returns it.
func (e *env) raise(p authx.Principal, requestID string) *whistlev1.Issue {
	e.T.Helper()
	resp, err := e.client(p).RaiseIssue(context.Background(), &whistlev1.RaiseIssueRequest{
		RequestId: requestID, GridId: p.Scope, CategoryId: "blocked-drain", Text: "The drain outside no. 12 overflows",
	})
	if err != nil {
		e.T.Fatalf("raise %s: %v", requestID, err)
	}
	return resp.GetIssue()
}

// appendEvent appends what another service would decide on the issue, after its last event.
func (e *env) appendEvent(issueID, idSuffix string, actor *whistlev1.Actor, payload func(*whistlev1.Event)) {
	e.T.Helper()
	ev := &whistlev1.Event{Id: issueID + "." + idSuffix, IssueId: issueID, Actor: actor}
	payload(ev)
	e.Append(ev)
}

// streamMessages counts the events in the stream.
func (e *env) streamMessages() uint64 {
	e.T.Helper()
	info, err := e.Deps.Log.StreamInfo(context.Background())
	if err != nil {
		e.T.Fatal(err)
	}
	return info.State.Msgs
}

// flushRedis wipes every key, as a lost Redis would.
func flushRedis(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// service is the actor of events that services decide.
func service(name string) *whistlev1.Actor { return &whistlev1.Actor{Subject: name, Role: "service"} }

// person is the actor of events that people decide.
func person(p authx.Principal) *whistlev1.Actor {
	return &whistlev1.Actor{Subject: p.Subject, Role: string(p.Role), Scope: p.Scope}
}
