// Package intake is the service where issues are raised and followed: it owns the issue as raised,
// the issue view with its timeline, and the idempotency of raises. It keeps its view of every issue
// by consuming every whistle event.
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/app"
	"github.com/whistle-dispatch/whistle/services/intake/internal/grpcapi"
	"github.com/whistle-dispatch/whistle/services/intake/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// Name is the service's name, its durable consumer's name and its Redis key prefix.
const Name = "intake"

// Config tunes the service; the zero value is ready to use.
type Config struct {
	// Workers is how many issues the consumer applies at once; 0 means eventlog.DefaultWorkers.
	Workers int
	// Replicas is the photo bucket's replication factor when it does not exist yet; 0 means 1.
	Replicas int
	// KeepPhotoMetadata stores photos as uploaded, with the EXIF, XMP and text metadata that may
	// say where and when they were taken; by default it is stripped.
	KeepPhotoMetadata bool
	// VerifyWithin is how long a resolved issue waits for its grid's worker to verify it before
	// it closes itself; 0 means app.DefaultVerifyWithin.
	VerifyWithin time.Duration
}

// Service is the intake service. It implements platform.Service.
type Service struct {
	deps   platform.Deps
	cfg    Config
	store  *store.Store
	app    *app.App
	photos *evidence.Store
	api    *grpcapi.Server
}

var _ platform.Service = (*Service)(nil)

// New wires the service on its dependencies.
func New(d platform.Deps, cfg Config) (*Service, error) {
	if d.Log == nil || d.NATS == nil || d.Redis == nil || d.Catalog == nil || d.Clock == nil {
		return nil, errors.New("intake: Log, NATS, Redis, Catalog and Clock are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	photos, err := evidence.Open(ctx, d.NATS, evidence.Config{Replicas: cfg.Replicas, KeepMetadata: cfg.KeepPhotoMetadata, Clock: d.Clock, Logger: d.Logger})
	if err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	if cfg.VerifyWithin == 0 {
		cfg.VerifyWithin = app.DefaultVerifyWithin
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	st := store.New(d.Redis)
	rosters := d.Rosters
	if rosters == nil {
		if rosters, err = roster.ForCatalog("", d.Catalog); err != nil {
			return nil, fmt.Errorf("intake: %w", err)
		}
	}
	a := app.New(d.Log, st, d.Catalog, d.Clock, photos, rosters)
	return &Service{deps: d, cfg: cfg, store: st, app: a, photos: photos, api: grpcapi.New(a, cfg.VerifyWithin)}, nil
}

// openTimeout bounds opening the photo bucket at start.
const openTimeout = 30 * time.Second

// Name returns "intake".
func (s *Service) Name() string { return Name }

// Register adds IntakeService to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { whistlev1.RegisterIntakeServiceServer(r, s.api) }

// Rebuild keeps the issue view up to date with the stream until ctx ends, and closes nothing and
// sweeps no photo.
func (s *Service) Rebuild(ctx context.Context) error { return s.project(ctx) }

// Run keeps the issue view up to date with the stream until ctx ends, closes each resolved
// issue nobody verified in time, and sweeps away the photos no event names once their time is up.
func (s *Service) Run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var loops sync.WaitGroup
	loops.Go(func() { s.app.CloseUnverified(ctx, s.cfg.VerifyWithin, s.deps.Logger) })
	loops.Go(func() { s.photos.RunSweeper(ctx, s.app.PhotoNamed) })
	defer func() { stop(); loops.Wait() }()
	return s.project(ctx)
}

// project runs intake's consumer, which only projects.
func (s *Service) project(ctx context.Context) error {
	err := s.deps.Log.Consume(ctx, eventlog.ConsumerConfig{Durable: Name, Workers: s.cfg.Workers, Logger: s.deps.Logger},
		s.store, nil)
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	return nil
}
