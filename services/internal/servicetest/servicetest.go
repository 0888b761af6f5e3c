// Package servicetest is the world a service's tests run in: embedded NATS with the event log,
// a real redis-server, the sample catalog, a fake clock and a token authority, with helpers to
// serve a service over gRPC, call it as a principal, run its consumer and feed it the events
// other services would append. Only tests import it; it imports "testing" for that reason.
package servicetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/projectiontest"
	"github.com/whistle-dispatch/whistle/pkg/grpcx"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
)

// Env is one test's servers and shared dependencies. Everything it starts stops when the test ends.
type Env struct {
	T     *testing.T
	Deps  platform.Deps
	Clock *clock.Fake // also Deps.Clock
	Auth  *authx.Authority
}

// NewEnv starts NATS and Redis for t, opens the event log on them and sets the fake clock to start.
func NewEnv(t *testing.T, start time.Time) *Env {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t))
	log, err := eventlog.Open(t.Context(), nc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(start)
	return &Env{
		T:     t,
		Deps:  platform.Deps{Log: log, NATS: nc, Redis: redistest.Client(t, redistest.Run(t)), Catalog: cat, Clock: clk, Logger: slog.Default()},
		Clock: clk,
		Auth:  authx.NewAuthority([]byte(strings.Repeat("k", 32))),
	}
}

// Serve serves what register adds on a gRPC server with the Env's authority, on a free loopback
// port, and returns its address. The server stops gracefully when the test ends.
func (e *Env) Serve(register func(grpc.ServiceRegistrar)) (addr string) {
	e.T.Helper()
	srv := grpcx.NewServer(e.Auth)
	register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.T.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- grpcx.Serve(ctx, srv, lis, time.Second) }()
	e.T.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			e.T.Errorf("serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// Dial connects to addr, calling as p with a token the Env's authority minted; a zero p calls
// without a token. The connection closes when the test ends.
func (e *Env) Dial(addr string, p authx.Principal) *grpc.ClientConn {
	e.T.Helper()
	tok := ""
	if p != (authx.Principal{}) {
		var err error
		if tok, err = e.Auth.Mint(p, time.Hour); err != nil {
			e.T.Fatal(err)
		}
	}
	conn, err := grpcx.Dial(addr, tok)
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Run runs svc (its consumer and any loops) until the returned stop is called or the test ends.
// stop waits until Run has returned, fails the test if it returned an error, and may be called
// more than once.
func (e *Env) Run(svc platform.Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			e.T.Errorf("run %s: %v", svc.Name(), err)
		}
	})
	e.T.Cleanup(stop)
	return stop
}

// Settled waits until each named durable consumer has handled every event in the stream.
func (e *Env) Settled(durables ...string) {
	e.T.Helper()
	wait.For(e.T, 10*time.Second, 10*time.Millisecond, func() error {
		for _, d := range durables {
			n, err := e.Deps.Log.Pending(e.T.Context(), d)
			if err == nil && n > 0 {
				err = fmt.Errorf("%s: %d events pending", d, n)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Append appends ev as its issue's next event, as another service would, and returns its
// sequence. It sets PrevSeq to the issue's last sequence and, when ev leaves them unset,
// OccurredAt to the fake clock's now and CorrelationId to the issue id. When another writer
// appends first (the service under test reacting), it reads the new last sequence and appends
// again, as a service deciding again would, up to eventlog.MaxDecideAttempts times.
func (e *Env) Append(ev *whistlev1.Event) uint64 {
	e.T.Helper()
	if ev.OccurredAt == nil {
		ev.OccurredAt = timestamppb.New(e.Clock.Now())
	}
	if ev.CorrelationId == "" {
		ev.CorrelationId = ev.GetIssueId()
	}
	ctx := e.T.Context()
	for range eventlog.MaxDecideAttempts {
		last, err := e.Deps.Log.Last(ctx, ev.GetIssueId())
		if err != nil {
			e.T.Fatal(err)
		}
		ev.PrevSeq = last
		seq, err := e.Deps.Log.Append(ctx, ev)
		if errors.Is(err, eventlog.ErrConflict) {
			continue
		}
		if err != nil {
			e.T.Fatalf("append %s: %v", ev.GetId(), err)
		}
		return seq
	}
	e.T.Fatalf("append %s: lost the race %d times", ev.GetId(), eventlog.MaxDecideAttempts)
	return 0
}

// RedisSubject is a service's Redis store on a redis-server of its own, for the projection
// contract suite: the suite's dump is everything in that Redis.
func RedisSubject(t *testing.T, newStore func(rdb redis.UniversalClient) eventlog.Projection) projectiontest.Subject {
	t.Helper()
	return redisSubject(redistest.Client(t, redistest.Run(t)), newStore)
}

// ClusterSubject is a service's Redis store on a Redis Cluster of three masters of its own while
// t runs, lent by clusters (make one pool per suite: a cluster takes seconds to form), for the
// projection contract suite: the suite's dump is everything on every master.
func ClusterSubject(t *testing.T, clusters *redistest.ClusterPool, newStore func(rdb redis.UniversalClient) eventlog.Projection) projectiontest.Subject {
	t.Helper()
	return redisSubject(redistest.ClusterClient(t, clusters.Take(t)), newStore)
}

// redisSubject is the store newStore makes on rdb, dumped with everything rdb holds.
func redisSubject(rdb redis.UniversalClient, newStore func(rdb redis.UniversalClient) eventlog.Projection) projectiontest.Subject {
	return projectiontest.Subject{
		Projection: newStore(rdb),
		Dump:       func(ctx context.Context) (string, error) { return redistest.Dump(ctx, rdb) },
	}
}

// Stored returns the issue's last event of kind as the stream stored it, with the stream's time:
// every time a view shows is one of these.
func (e *Env) Stored(issueID, kind string) eventlog.Record {
	e.T.Helper()
	recs, err := e.Deps.Log.Read(e.T.Context(), issueID, 0)
	if err != nil {
		e.T.Fatal(err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if eventlog.Kind(recs[i].Event) == kind {
			return recs[i]
		}
	}
	e.T.Fatalf("%s has no %s event", issueID, kind)
	return eventlog.Record{}
}
