package intake_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/grpcx"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
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
	deps  platform.Deps
	svc   *intake.Service
	auth  *authx.Authority
	clock *clock.Fake
	addr  string
	stop  func() // stops the consumer started by run
}

// start brings up NATS, Redis, the service (consuming) and its gRPC server.
func start(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	nc := natstest.Connect(t, natstest.RunServer(t))
	log, err := eventlog.Open(ctx, nc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		auth:  authx.NewAuthority(bytes.Repeat([]byte("k"), 32)),
		clock: clock.NewFake(time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)),
	}
	e.deps = platform.Deps{Log: log, NATS: nc, Redis: redistest.Client(t, redistest.Run(t)), Catalog: cat, Clock: e.clock, Logger: slog.Default()}
	if e.svc, err = intake.New(e.deps, intake.Config{}); err != nil {
		t.Fatal(err)
	}
	e.run(t)

	srv := grpcx.NewServer(e.auth)
	e.svc.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = lis.Addr().String()
	serveCtx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- grpcx.Serve(serveCtx, srv, lis, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return e
}

// run starts the service's consumer; stop ends it and waits until it has.
func (e *env) run(t *testing.T) { e.stop = runService(t, e.svc) }

// replica starts one more instance of the service on the same NATS and Redis, consuming until the
// test ends, as a second process would.
func (e *env) replica(t *testing.T) {
	t.Helper()
	svc, err := intake.New(e.deps, intake.Config{})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, svc)
}

// runService runs svc's consumer until the returned stop is called or the test ends; stop waits
// until it has ended and may be called more than once.
func runService(t *testing.T, svc *intake.Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// client returns an IntakeService client that calls as p.
func (e *env) client(t *testing.T, p authx.Principal) whistlev1.IntakeServiceClient {
	t.Helper()
	tok, err := e.auth.Mint(p, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcx.Dial(e.addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return whistlev1.NewIntakeServiceClient(conn)
}

// raise raises a valid issue in the caller's grid and returns it.
func (e *env) raise(t *testing.T, p authx.Principal, requestID string) *whistlev1.Issue {
	t.Helper()
	resp, err := e.client(t, p).RaiseIssue(context.Background(), &whistlev1.RaiseIssueRequest{
		RequestId: requestID, GridId: p.Scope, CategoryId: "blocked-drain", Text: "The drain outside no. 12 overflows",
	})
	if err != nil {
		t.Fatalf("raise %s: %v", requestID, err)
	}
	return resp.GetIssue()
}

// appendEvent appends what another service would decide on the issue, after its last event.
func (e *env) appendEvent(t *testing.T, issueID, idSuffix string, actor *whistlev1.Actor, payload func(*whistlev1.Event)) {
	t.Helper()
	ctx := context.Background()
	last, err := e.deps.Log.Last(ctx, issueID)
	if err != nil {
		t.Fatal(err)
	}
	ev := &whistlev1.Event{
		Id: issueID + "." + idSuffix, IssueId: issueID, OccurredAt: timestamppb.New(e.clock.Now()),
		PrevSeq: last, Actor: actor, CorrelationId: issueID,
	}
	payload(ev)
	if _, err := e.deps.Log.Append(ctx, ev); err != nil {
		t.Fatalf("append %s: %v", ev.GetId(), err)
	}
}

// streamMessages counts the events in the stream.
func (e *env) streamMessages(t *testing.T) uint64 {
	t.Helper()
	info, err := e.deps.Log.StreamInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// flushRedis wipes every key, as a lost Redis would.
func flushRedis(t *testing.T, rdb *redis.Client) {
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

// clientWithToken returns an IntakeService client that sends tok as it is (none when empty).
func (e *env) clientWithToken(t *testing.T, tok string) whistlev1.IntakeServiceClient {
	t.Helper()
	conn, err := grpcx.Dial(e.addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return whistlev1.NewIntakeServiceClient(conn)
}
