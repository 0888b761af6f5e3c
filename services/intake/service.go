// Package intake is the service where issues are raised and followed: it owns the issue as raised,
// the issue view with its timeline, and the idempotency of raises. It keeps its view of every issue
// by consuming every whistle event.
package intake

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/app"
	"github.com/whistle-dispatch/whistle/services/intake/internal/grpcapi"
	"github.com/whistle-dispatch/whistle/services/intake/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
)

// Name is the service's name, its durable consumer's name and its Redis key prefix.
const Name = "intake"

// Config tunes the service; the zero value is ready to use.
type Config struct {
	// Workers is how many issues the consumer applies at once; 0 means eventlog.DefaultWorkers.
	Workers int
}

// Service is the intake service. It implements platform.Service.
type Service struct {
	deps  platform.Deps
	cfg   Config
	store *store.Store
	api   *grpcapi.Server
}

var _ platform.Service = (*Service)(nil)

// New wires the service on its dependencies.
func New(d platform.Deps, cfg Config) (*Service, error) {
	if d.Log == nil || d.Redis == nil || d.Catalog == nil || d.Clock == nil {
		return nil, errors.New("intake: Log, Redis, Catalog and Clock are required")
	}
	st := store.New(d.Redis)
	a := app.New(d.Log, st, d.Catalog, d.Clock)
	return &Service{deps: d, cfg: cfg, store: st, api: grpcapi.New(a)}, nil
}

// Name returns "intake".
func (s *Service) Name() string { return Name }

// Register adds IntakeService to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { whistlev1.RegisterIntakeServiceServer(r, s.api) }

// Rebuild is Run: intake only projects.
func (s *Service) Rebuild(ctx context.Context) error { return s.Run(ctx) }

// Run keeps the issue view up to date with the stream until ctx ends. Intake reacts to no event:
// it only projects them.
func (s *Service) Run(ctx context.Context) error {
	err := s.deps.Log.Consume(ctx, eventlog.ConsumerConfig{Durable: Name, Workers: s.cfg.Workers, Logger: s.deps.Logger},
		s.store, nil)
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	return nil
}
