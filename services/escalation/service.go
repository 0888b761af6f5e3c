// Package escalation keeps the SLA clocks of every assignment and shows supervisors what is late.
//
// It projects every whistle event into a per-issue state in Redis that holds the deadlines frozen at
// dispatch and when the stream stored each clearing event; the timers sit in sorted sets sharded
// by the issues' partitions, written with the state. A timer loop, one replica at a time under a
// lease, sleeps until the earliest timer and appends a breach for each deadline that, on the
// stream's clock, passed before the event that clears it was stored: at once for a clearing event
// stored late. The append is conditional on the last sequence, so each deadline breaches
// exactly once, or never, across crashes, restarts and replicas.
package escalation

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/app"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/grpcapi"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/scorecard"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// DefaultLeaseTTL is how long the timer lease outlives its holder's last renewal.
const DefaultLeaseTTL = 5 * time.Second

// DueBatch is how many due timers one pass of a lane of the holder of the lease fires, the first
// breach of each issue among them appended at once (eventlog.Log.DecideAll), and FireLanes how
// many lanes fire at once, so that a bench can append as the timer loop does.
const (
	DueBatch  = app.DueBatch
	FireLanes = app.FireLanes
)

// Config tunes the escalation service.
type Config struct {
	// Workers is how many issues the consumer applies at once; zero means the eventlog default.
	Workers int
	// LeaseTTL is how long a replica that stopped renewing keeps the timers; zero means
	// DefaultLeaseTTL. A value under twice app.LeaseCheck, the renewal interval, is raised
	// to that, so that one late renewal does not hand the timers over.
	LeaseTTL time.Duration
	// WorkingTime measures, for the scorecards, the time from a to b of a part whose frozen policy
	// counts working time; nil means by the catalog's working calendar.
	WorkingTime func(a, b time.Time) time.Duration
	// RosterPath is the rosters file, reloaded when it changes, whose people reminders and
	// chains tell; empty means the rosters the service started with, for good.
	RosterPath string
	// ReconcileEvery is how often the timers are reconciled with the issues' states (see
	// store.Reconcile); zero means app.DefaultReconcileEvery.
	ReconcileEvery time.Duration
}

// Service is the escalation service.
type Service struct {
	deps   platform.Deps
	cfg    Config
	store  *store.Store
	timers *app.Timers
	// people says whom reminders and chains tell, by the rosters in force.
	people   *app.People
	breaches *app.Breaches
	// supervisors urges parts and decides extensions.
	supervisors *app.Supervisors
	// quarantined reads the dead letters of every service, for supervisors.
	quarantined *app.Quarantined
	scorecards  *app.Scorecards
}

var _ platform.Service = (*Service)(nil)

// New wires the service on its dependencies.
func New(d platform.Deps, cfg Config) (*Service, error) {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	cfg.LeaseTTL = max(cfg.LeaseTTL, 2*app.LeaseCheck)
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	s := &Service{deps: d, cfg: cfg}
	// The store tells the timer loop about new deadlines, and the loop fires through the store.
	s.store = store.New(d.Redis, d.Catalog.Calendar(), func(at time.Time) { s.timers.Notify(at) })
	s.people = app.NewPeople(d.Rosters)
	s.timers = app.NewTimers(d.Log, s.store, d.Clock, store.NewLease(d.Redis, cfg.LeaseTTL), s.people, d.Logger)
	if cfg.ReconcileEvery > 0 {
		s.timers.ReconcileEvery = cfg.ReconcileEvery
	}
	s.breaches = app.NewBreaches(d.Log, s.store, d.Catalog, feed.NewHub(d.Redis))
	s.quarantined = app.NewQuarantined(d.Log.DeadLetters(), s.store, d.Catalog)
	s.supervisors = app.NewSupervisors(d.Log, s.store, d.Catalog, d.Clock, s.people)
	if cfg.WorkingTime == nil {
		cfg.WorkingTime = d.Catalog.Calendar().Between
	}
	s.scorecards = app.NewScorecards(scorecard.NewReader(d.Redis, s.store.ScorecardFacts), d.Catalog, cfg.WorkingTime)
	return s, nil
}

// Name is the service's name, its consumer's name and its Redis key prefix.
func (s *Service) Name() string { return app.ServiceName }

// Register adds EscalationService to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	whistlev1.RegisterEscalationServiceServer(r, grpcapi.WithScorecards(grpcapi.New(s.breaches, s.quarantined, s.supervisors, s.deps.Catalog), s.scorecards))
}

// Run consumes every whistle event into the projection and runs the timer loop until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if s.cfg.RosterPath != "" {
		go roster.Follow(ctx, s.cfg.RosterPath, s.deps.Catalog, s.Name(), s.deps.Logger, s.people.Rosters, s.people.Set)
	}
	g.Go(func() error { return s.Rebuild(ctx) })
	g.Go(func() error { return s.timers.Run(ctx) })
	return g.Wait()
}

// Rebuild consumes every whistle event into the projection, timers included, and fires none.
func (s *Service) Rebuild(ctx context.Context) error {
	return s.deps.Log.Consume(ctx, eventlog.ConsumerConfig{Durable: s.Name(), Workers: s.cfg.Workers, Logger: s.deps.Logger},
		s.store, nil)
}

// Reconcile runs one pass of the timer reconciliation now (see docs/architecture.md, Timers at
// scale), beside the passes the timer loop runs every Config.ReconcileEvery, and returns how many
// timers it put back: it should be none.
func (s *Service) Reconcile(ctx context.Context) (int, error) { return s.timers.Reconcile(ctx) }
