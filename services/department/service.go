// Package department is the duty officers' desk: it keeps each department's inbox of assignments
// from the event log, lets officers report in (acknowledge) and resolve, and streams inbox changes
// as they happen, from a feed per department that its projection writes.
package department

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/department/internal/app"
	"github.com/whistle-dispatch/whistle/services/department/internal/grpcapi"
	"github.com/whistle-dispatch/whistle/services/department/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/notify"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// Name is the service's name, its durable consumer and its Redis key prefix.
const Name = "department"

// Config is the department service's configuration.
type Config struct {
	// Workers is how many issues the consumer applies at once; zero means the eventlog default.
	Workers int
	// Replicas is the photo bucket's replication factor when it does not exist yet; 0 means 1.
	Replicas int
	// RosterPath is the rosters file the process started with, reloaded when it changes; empty
	// when the rosters are the sample city's (or none).
	RosterPath string
	// Notify, when set, runs the notifier beside the projection: it tells the officer an
	// assignment is pushed to, and an issue's raiser of its changes, through a webhook. Nil means
	// notifications are off and nothing is queued.
	Notify *notify.Config
}

// Service is the department service.
type Service struct {
	d     platform.Deps
	cfg   Config
	store *store.Store
	app   *app.App
	api   *grpcapi.Server
	// notifications is nil when notifications are off.
	notifications *notify.Notifications
}

var _ platform.Service = (*Service)(nil)

// New returns the service.
func New(d platform.Deps, cfg Config) (*Service, error) {
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Rosters == nil {
		r, err := roster.ForCatalog("", d.Catalog)
		if err != nil {
			return nil, fmt.Errorf("department: %w", err)
		}
		d.Rosters = r
	}
	if d.NATS == nil {
		return nil, errors.New("department: NATS is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	photos, err := evidence.Open(ctx, d.NATS, evidence.Config{Replicas: cfg.Replicas, Clock: d.Clock, Logger: d.Logger})
	if err != nil {
		return nil, fmt.Errorf("department: %w", err)
	}
	st := store.New(d.Redis)
	a := app.New(d.Log, st, d.Clock, feed.NewHub(d.Redis), d.Rosters, photos)
	s := &Service{d: d, cfg: cfg, store: st, app: a, api: grpcapi.New(a, d.Catalog)}
	s.api.Notifications = notify.Lister(d.Redis)
	if cfg.Notify != nil {
		n, err := notify.New(d, *cfg.Notify, nil)
		if err != nil {
			return nil, err
		}
		s.notifications = n
	}
	return s, nil
}

// openTimeout bounds opening the photo bucket at start.
const openTimeout = 30 * time.Second

// Name returns "department".
func (s *Service) Name() string { return Name }

// Register adds the DepartmentService API to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	whistlev1.RegisterDepartmentServiceServer(r, s.api)
}

// Run consumes every whistle event into the department's projection until ctx ends, and pushes
// each summoned unit's assignment to its officer on duty. With notifications on, the notifier runs
// beside it on a consumer of its own, so that neither waits for the other; one stopping unasked
// stops both.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.cfg.RosterPath != "" {
		go roster.Follow(ctx, s.cfg.RosterPath, s.d.Catalog, Name, s.d.Logger, s.app.Rosters, s.app.SetRosters)
	}
	if s.notifications == nil {
		return s.consume(ctx, s.app.React)
	}
	errs := make(chan error, 2)
	for _, run := range []func(context.Context) error{
		func(ctx context.Context) error { return s.consume(ctx, s.app.React) },
		s.notifications.Run,
	} {
		go func() {
			err := run(ctx)
			cancel()
			errs <- err
		}()
	}
	return errors.Join(<-errs, <-errs)
}

// Rebuild only applies events to the department's projection: it pushes nothing and notifies
// nobody. The notifier's consumer keeps its place, so nothing it sent before is sent again.
func (s *Service) Rebuild(ctx context.Context) error { return s.consume(ctx, nil) }

// consume runs the department's consumer with react as its reaction.
func (s *Service) consume(ctx context.Context, react eventlog.Handler) error {
	return s.d.Log.Consume(ctx, eventlog.ConsumerConfig{Durable: Name, Workers: s.cfg.Workers, Logger: s.d.Logger,
		ReactsTo: app.ReactsTo}, s.store, react)
}
