// Package system wires the Whistle services into one running process: NATS and Redis
// (embedded or external), the event log, the catalog, tokens, telemetry, one gRPC
// server and one HTTP server. `whistle up`, `whistle serve NAME`, `whistle replay` and
// the system tests all start Whistle through it, so they run exactly the same wiring.
package system

import (
	"context"
	"errors"
	"fmt"
	"github.com/whistle-dispatch/whistle/services/gateway"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/grpcx"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	"github.com/whistle-dispatch/whistle/services/department"
	"github.com/whistle-dispatch/whistle/services/escalation"
	"github.com/whistle-dispatch/whistle/services/intake"
	"github.com/whistle-dispatch/whistle/services/internal/notify"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/routing"
)

// Names are the services a system runs when Options.Services is empty, in the order
// they are started.
var Names = []string{"intake", "routing", "department", "escalation"}

// constructors build each service by name from the options that concern it.
var constructors = map[string]func(platform.Deps, Options) (platform.Service, error){
	"intake": func(d platform.Deps, o Options) (platform.Service, error) {
		return intake.New(d, intake.Config{VerifyWithin: o.VerifyWithin, Replicas: o.Replicas, KeepPhotoMetadata: o.KeepPhotoMetadata})
	},
	"routing": func(d platform.Deps, o Options) (platform.Service, error) {
		return routing.New(d, routing.Config{RulesPath: o.RulesPath, CatalogPath: o.CatalogPath})
	},
	"department": func(d platform.Deps, o Options) (platform.Service, error) {
		return department.New(d, department.Config{RosterPath: o.RosterPath, Notify: o.notify(), Replicas: o.Replicas})
	},
	"escalation": func(d platform.Deps, o Options) (platform.Service, error) {
		return escalation.New(d, escalation.Config{RosterPath: o.RosterPath})
	},
}

// Shutdown bounds used when Stop's context has no earlier deadline.
const (
	// GRPCHardStop is how long calls in flight may finish before the gRPC server
	// closes them, so that a stuck stream cannot hold shutdown forever.
	GRPCHardStop = 10 * time.Second
	// httpReadHeaderTimeout keeps a slow client from holding a connection open.
	httpReadHeaderTimeout = 5 * time.Second
)

// Options is the configuration of one Whistle process, read once at start.
type Options struct {
	// DataDir holds the token signing key and, when they run embedded, NATS's
	// JetStream store and redis-server's files. Required.
	DataDir string
	// NATSURL is an external NATS; empty starts an embedded server in DataDir/nats.
	NATSURL string
	// NATSUser and NATSPassword are the credentials of every connection to an external
	// NATS; empty connects without. The embedded NATS ignores them: its users and passwords
	// are in DataDir/nats-users.conf, one per service.
	NATSUser, NATSPassword string
	// NATSPort is the embedded NATS server's client port; 0 picks a free one.
	NATSPort int
	// RedisURL is an external Redis, or a Redis Cluster named as redisx.Connect reads it;
	// empty starts a redis-server child in DataDir/redis.
	RedisURL string
	// GRPCAddr and HTTPAddr are where the gRPC API and /healthz, /metrics listen;
	// empty means 127.0.0.1 on a free port.
	GRPCAddr, HTTPAddr string
	// Clock is the time every service reads; nil means the real clock.
	Clock clock.Clock
	// Logger receives the process's logs; nil means slog.Default().
	Logger *slog.Logger
	// Services names the services to run; empty runs all of Names.
	Services []string
	// CatalogPath is the city's catalog (area tree, departments, categories and SLA policies);
	// empty means the embedded sample city.
	CatalogPath string
	// RulesPath is routing's rules table; empty means the sample city's embedded rules.
	RulesPath string
	// VerifyWithin is how long a resolved issue waits for its grid's worker to verify it before
	// it closes itself; 0 means intake's default.
	VerifyWithin time.Duration
	// RosterPath is the units' duty rosters; empty means the sample city's for the sample
	// catalog, and none for another.
	RosterPath string
	// Sync is how often the embedded NATS flushes JetStream to disk; the zero value keeps
	// the server's default. It does not apply to an external NATS, whose operator sets it.
	Sync natsx.Sync
	// Replicas is the replication factor of the event streams when they do not exist yet: 1
	// for the embedded server, 3 for a three-node cluster; 0 means 1. Streams that exist are
	// used as they are, so a start never changes what an operator set.
	Replicas int
	// KeepPhotoMetadata stores uploaded photos with their metadata (EXIF, XMP, text chunks),
	// which may say where and when they were taken; by default it is stripped.
	KeepPhotoMetadata bool
	// PprofAddr, when set, is where the Go profiler's endpoints (/debug/pprof/) listen, on a
	// listener of their own so that they are never exposed beside the health check by mistake.
	PprofAddr string
	// MapTiles is the city's tile server beneath the console's map ({z}/{x}/{y} URL template);
	// empty draws the grids' boundaries alone.
	MapTiles string
	// Notify configures the department's notifier; with no webhook URL, notifications are off
	// and nothing is queued. A URL without a good secret stops the start, naming what is wrong.
	Notify notify.Config
}

// notify is the notifier's configuration when notifications are on, nil when they are off.
func (o Options) notify() *notify.Config {
	if o.Notify.Webhook.URL == "" {
		return nil
	}
	n := o.Notify
	return &n
}

// check refuses options that could never work, before anything starts.
func (o Options) check() error {
	if n := o.notify(); n != nil && slices.Contains(o.Services, "department") {
		if err := n.Check(); err != nil {
			return fmt.Errorf("system: notifications: %w", err)
		}
	}
	return nil
}

// System is a running Whistle process. Stop it with Stop.
type System struct {
	in        *infra
	authority *authx.Authority
	telemetry *otelx.Telemetry
	natsStats metric.Registration // the embedded NATS server's counters in /metrics; nil when NATS is external
	readyStat metric.Registration // whistle.ready, what /healthz answers, in /metrics
	grpcLis   net.Listener
	front     *front           // /healthz, /metrics, the console and Open311, and the profiler
	gateway   *gateway.Gateway // the console and Open311; nil unless the process runs intake and routing
	*ending

	cancelGRPC context.CancelFunc // ends the gRPC server, which stops gracefully
	grpcDone   chan struct{}
	cancelRun  context.CancelFunc // ends the services' Run
	running    sync.WaitGroup     // the services' Run and the HTTP server

	stopOnce sync.Once
	stopErr  error
}

// Start starts everything opts ask for and returns once the gRPC and HTTP servers
// listen and every service runs. ctx bounds the start only: the system runs until
// Stop, and Wait reports a component that fails before then.
func Start(ctx context.Context, opts Options) (_ *System, err error) {
	opts = withDefaults(opts)
	logConfig(opts, "whistle starting")
	if err := opts.check(); err != nil {
		return nil, err
	}
	in, err := openInfra(ctx, opts, false)
	if err != nil {
		return nil, err
	}
	s := &System{in: in, ending: newEnding(opts.Logger), grpcDone: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = s.closeListeners()
			s.unobserveNATS()
			_ = in.close(context.WithoutCancel(ctx))
		}
	}()

	key, err := authx.LoadOrCreateKey(filepath.Join(opts.DataDir, "token.key"))
	if err != nil {
		return nil, err
	}
	s.authority = authx.NewAuthority(key)
	tel, err := telemetry(ctx)
	if err != nil {
		return nil, err
	}
	s.telemetry = tel
	if in.embedded != nil {
		if s.natsStats, err = observeNATS(in.embedded); err != nil {
			return nil, err
		}
	}
	if s.readyStat, err = observeReady(s.names(), in.healthy); err != nil {
		return nil, err
	}

	if s.grpcLis, err = listen(opts.GRPCAddr); err != nil {
		return nil, fmt.Errorf("system: gRPC: %w", err)
	}
	if s.front, err = openFront(opts.HTTPAddr, opts.PprofAddr, in.healthy, tel); err != nil {
		return nil, err
	}

	// Each service's consumer exists before its API answers, so that a watch begun at once can
	// follow from what the consumer applied.
	for _, svc := range in.services {
		if err := in.deps.Log.EnsureConsumer(ctx, eventlog.ConsumerConfig{Durable: svc.Name()}); err != nil {
			return nil, fmt.Errorf("system: %s: %w", svc.Name(), err)
		}
	}
	srv := grpcx.NewServer(s.authority)
	for _, svc := range in.services {
		svc.Register(srv)
	}
	if servesOpen311(opts.Services) {
		// The gateway calls this process's own gRPC API, as any client would.
		s.gateway, err = gateway.New(gateway.Config{Targets: gateway.OneTarget(s.GRPCAddr()), Authority: s.authority,
			Zone: in.deps.Catalog.TimeZone(), Contact: "the city's operator of Whistle", Redis: in.deps.Redis, MapTiles: opts.MapTiles})
		if err != nil {
			return nil, err
		}
		s.gateway.Mount(s.front.mux)
	}

	// Nothing below can fail, so every goroutine started here is ended by Stop.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	grpcCtx, cancelGRPC := context.WithCancel(runCtx)
	s.cancelRun, s.cancelGRPC = cancelRun, cancelGRPC
	go s.serveGRPC(grpcCtx, srv)
	s.front.serve(&s.running, s.ending)
	if in.redisSrv != nil {
		// A redis-server child that keeps dying past its restart limit ends the process with
		// the reason, rather than leaving it up with no store.
		s.running.Go(func() {
			select {
			case <-in.redisSrv.Failed():
				s.fail(fmt.Errorf("system: %w", in.redisSrv.Err()))
			case <-runCtx.Done():
			}
		})
	}
	for _, svc := range in.services {
		s.running.Go(func() {
			err := svc.Run(runCtx)
			if runCtx.Err() == nil {
				s.fail(fmt.Errorf("system: %s stopped unasked: %v", svc.Name(), err))
			}
		})
	}
	opts.Logger.Info("whistle started", "grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "services", s.names())
	return s, nil
}

// serveGRPC serves the API until ctx ends, then stops gracefully within GRPCHardStop.
func (s *System) serveGRPC(ctx context.Context, srv *grpc.Server) {
	defer close(s.grpcDone)
	if err := grpcx.Serve(ctx, srv, s.grpcLis, GRPCHardStop); err != nil && ctx.Err() == nil {
		s.fail(err)
	}
}

// Stop shuts down in the order that loses nothing: the gRPC server first, letting calls
// in flight finish (they write through the event log, which is still open); then the
// HTTP server and the services; then NATS is drained, Redis and the embedded NATS server
// are stopped, and pending spans are flushed. It is safe to call more than once, and
// after Wait returned.
func (s *System) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		var errs []error
		s.cancelGRPC()
		<-s.grpcDone // grpcx.Serve bounds the graceful stop by GRPCHardStop
		errs = append(errs, s.front.shutdown(ctx))
		if s.gateway != nil {
			errs = append(errs, s.gateway.Close())
		}
		s.cancelRun()
		s.running.Wait()
		s.unobserveNATS()
		errs = append(errs, s.in.close(ctx), s.telemetry.Shutdown(ctx))
		s.stopErr = errors.Join(errs...)
		s.stopped()
		s.in.deps.Logger.Info("whistle stopped", "err", s.stopErr)
	})
	return s.stopErr
}

// unobserveNATS stops reporting the embedded NATS server's counters and the process's readiness,
// before the server and the connections the readiness reads stop.
func (s *System) unobserveNATS() {
	for _, reg := range []metric.Registration{s.natsStats, s.readyStat} {
		if reg != nil {
			_ = reg.Unregister()
		}
	}
}

// closeListeners closes the listeners of a start that failed before serving.
func (s *System) closeListeners() error {
	var errs []error
	if s.grpcLis != nil {
		errs = append(errs, s.grpcLis.Close())
	}
	if s.front != nil {
		errs = append(errs, s.front.close())
	}
	return errors.Join(errs...)
}

// GRPCAddr returns the address the gRPC server listens on, with the port it got.
func (s *System) GRPCAddr() string { return s.grpcLis.Addr().String() }

// Open311Path and ConsolePath are where the HTTP server serves Open311 GeoReport v2 and the
// web console.
const (
	Open311Path = gateway.Open311Path
	ConsolePath = gateway.ConsolePath
)

// servesOpen311 reports whether a process running services serves Open311 and the console: they
// need intake, where issues are raised, and routing, which lists the categories (the console's
// other pages call the other services, which whistle up runs too).
func servesOpen311(services []string) bool {
	return slices.Contains(services, intake.Name) && slices.Contains(services, routing.Name)
}

// ServesConsole reports whether the HTTP server serves the web console and Open311.
func (s *System) ServesConsole() bool { return s.gateway != nil }

// HTTPAddr returns the address the HTTP server (/healthz, /metrics, /console/, /open311/v2/) listens on.
func (s *System) HTTPAddr() string { return s.front.httpLis.Addr().String() }

// PprofAddr returns the address the profiler's endpoints listen on, "" when they are off.
func (s *System) PprofAddr() string { return s.front.pprofAddr() }

// profilerOnly serves the profiler's endpoints to requests that came in on lis, and answers
// 404 on every other listener: /healthz's listener may be reachable where a profile must not be.
func profilerOnly(lis net.Listener) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if local == nil || local.String() != lis.Addr().String() {
			http.NotFound(w, r)
			return
		}
		switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
		case "cmdline":
			pprof.Cmdline(w, r)
		case "profile":
			pprof.Profile(w, r)
		case "symbol":
			pprof.Symbol(w, r)
		case "trace":
			pprof.Trace(w, r)
		default:
			pprof.Index(w, r)
		}
	})
}

// Deps returns the connections the services run on, for tests and tools that look
// at the stream or Redis directly.
func (s *System) Deps() platform.Deps { return s.in.deps }

// RedisURL returns the URL of the Redis the services run on: the redis-server child's (its Unix
// socket when it has one; see redisx.Server.URL), or the one the options gave (which may name a
// cluster; see redisx.Connect).
func (s *System) RedisURL() string { return s.in.redisURL }

// Authority returns the authority that signs and verifies this system's tokens.
func (s *System) Authority() *authx.Authority { return s.authority }

// Services returns the running services in start order.
func (s *System) Services() []platform.Service { return s.in.services }

// names returns the running services' names, for logs.
func (s *System) names() []string {
	names := make([]string, len(s.in.services))
	for i, svc := range s.in.services {
		names[i] = svc.Name()
	}
	return names
}

// listen listens on addr, or on a free loopback port when addr is empty.
func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return net.Listen("tcp", addr)
}
