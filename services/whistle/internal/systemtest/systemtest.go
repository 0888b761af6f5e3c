// Package systemtest tests Whistle as a whole: every service in one process, started
// with the same wiring as `whistle up` on a real embedded NATS and a real redis-server
// child, and driven only through the public gRPC and HTTP APIs. This file holds the
// wiring the tests share; the tests are in the _test files.
package systemtest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/grpcx"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// Epoch is where the tests' fake clocks start: a Monday morning, so that no deadline
// depends on the machine's clock.
var Epoch = time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)

// Option changes the options a test starts a system with.
type Option func(*system.Options)

// WithCatalog starts the system on the catalog file at path.
func WithCatalog(path string) Option { return func(o *system.Options) { o.CatalogPath = path } }

// WithRules starts the system on the routing rules file at path.
func WithRules(path string) Option { return func(o *system.Options) { o.RulesPath = path } }

// WithRoster starts the system on the duty rosters file at path.
func WithRoster(path string) Option { return func(o *system.Options) { o.RosterPath = path } }

// WithVerifyWithin starts the system with resolved issues closing unverified after d.
func WithVerifyWithin(d time.Duration) Option { return func(o *system.Options) { o.VerifyWithin = d } }

// WithRedis starts the system on the Redis, or the Redis Cluster, that url names, instead of a
// redis-server child of its own.
func WithRedis(url string) Option { return func(o *system.Options) { o.RedisURL = url } }

// Options are the options of a test's system on dataDir: free loopback ports, the clock clk,
// warnings and errors logged to stderr, and whatever opts change.
func Options(dataDir string, clk clock.Clock, opts ...Option) system.Options {
	o := system.Options{
		DataDir:  dataDir,
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Clock:    clk,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Start starts a whole system with its own embedded NATS and redis-server child on
// dataDir, and stops it when the test ends (a test may also stop it earlier).
func Start(t testing.TB, dataDir string, clk clock.Clock, opts ...Option) *system.System {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sys, err := system.Start(ctx, Options(dataDir, clk, opts...))
	if err != nil {
		t.Fatalf("start the system: %v", err)
	}
	t.Cleanup(func() { Stop(t, sys) })
	return sys
}

// policyLine matches one SLA policy of the sample catalog, with its reminders, chain and kind of
// time.
var policyLine = regexp.MustCompile(`\{report_in: [0-9a-z]+, resolve: [0-9a-z]+[^}]*\}`)

// QuickCatalog writes the sample city with every SLA policy set to reportIn and resolve, in
// calendar time, without reminders or a chain, and returns its path. Deadlines are judged on the stream's clock, which is the real one, so a test
// that means a deadline to pass gives it seconds, not hours.
func QuickCatalog(t testing.TB, reportIn, resolve time.Duration) string {
	t.Helper()
	src := catalog.SampleSource()
	quick := policyLine.ReplaceAll(src, fmt.Appendf(nil, "{report_in: %s, resolve: %s}", reportIn, resolve))
	if bytes.Equal(quick, src) {
		t.Fatal("the sample catalog has no policy this helper can shorten")
	}
	path := filepath.Join(t.TempDir(), "quick-city.yaml")
	if err := os.WriteFile(path, quick, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Stop stops sys gracefully and fails the test if that does not go cleanly.
func Stop(t testing.TB, sys *system.System) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sys.Stop(ctx); err != nil {
		t.Errorf("stop the system: %v", err)
	}
}

// Clients are the four APIs of a system, called as one principal.
type Clients struct {
	Intake     whistlev1.IntakeServiceClient
	Routing    whistlev1.RoutingServiceClient
	Department whistlev1.DepartmentServiceClient
	Escalation whistlev1.EscalationServiceClient
}

// Dial connects to sys's gRPC API with a token for p, or with no token when p is the
// zero Principal.
func Dial(t testing.TB, sys *system.System, p authx.Principal) Clients {
	t.Helper()
	conn := DialConn(t, sys, p)
	return Clients{
		Intake:     whistlev1.NewIntakeServiceClient(conn),
		Routing:    whistlev1.NewRoutingServiceClient(conn),
		Department: whistlev1.NewDepartmentServiceClient(conn),
		Escalation: whistlev1.NewEscalationServiceClient(conn),
	}
}

// DialConn returns a client connection to sys for p (no token for the zero Principal),
// closed when the test ends.
func DialConn(t testing.TB, sys *system.System, p authx.Principal) *grpc.ClientConn {
	t.Helper()
	var tok string
	if p != (authx.Principal{}) {
		var err error
		if tok, err = sys.Authority().Mint(p, time.Hour); err != nil {
			t.Fatalf("mint a token for %+v: %v", p, err)
		}
	}
	conn, err := grpcx.Dial(sys.GRPCAddr(), tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Supervisor is a city supervisor: they see every issue, inbox and breach.
func Supervisor() authx.Principal {
	return authx.Principal{Subject: "supervisor@city", Role: authx.RoleSupervisor, Scope: authx.CityScope}
}

// Officer is a duty officer of a unit: the first officer of its roster in the sample city, whose
// rosters check that an officer acting for a unit is one of its people.
func Officer(unit string) authx.Principal {
	return authx.Principal{Subject: roster.SampleOfficer(unit), Role: authx.RoleOfficer, Scope: unit}
}

// GridWorker is a grid worker whose scope is an area (a grid, or above).
func GridWorker(area string) authx.Principal {
	return authx.Principal{Subject: "worker@" + area, Role: authx.RoleGridWorker, Scope: area}
}

// StreamMessages returns how many events the stream holds.
func StreamMessages(t testing.TB, sys *system.System) uint64 {
	t.Helper()
	info, err := sys.Deps().Log.StreamInfo(t.Context())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// Settle waits until every service's consumer has processed every event, so that the
// views all services serve include everything written so far.
func Settle(t testing.TB, sys *system.System) {
	t.Helper()
	wait.For(t, time.Minute, 50*time.Millisecond, func() error {
		for _, svc := range sys.Services() {
			n, err := sys.Deps().Log.Pending(t.Context(), svc.Name())
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%s has %d events pending", svc.Name(), n)
			}
		}
		return nil
	})
}

// PublishAs stores data on subject as the NATS user the system on dir made for service, as any
// process holding those credentials could, and returns the sequence the stream stored it at.
func PublishAs(t testing.TB, dir string, sys *system.System, service, subject string, data []byte) uint64 {
	t.Helper()
	users, err := natsx.ReadUsersConfig(filepath.Join(dir, system.UsersFile))
	if err != nil {
		t.Fatal(err)
	}
	password := ""
	for _, u := range users {
		if u.Username == service {
			password = u.Password
		}
	}
	nc, err := nats.Connect(sys.Deps().NATS.ConnectedUrl(), nats.UserInfo(service, password))
	if err != nil {
		t.Fatalf("connect as %s: %v", service, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(t.Context(), subject, data)
	if err != nil {
		t.Fatalf("publish on %s as %s: %v", subject, service, err)
	}
	return ack.Sequence
}
