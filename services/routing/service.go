// Package routing is the service that decides which departments each raised issue goes to: it
// matches the category and street against a rules table, freezes the SLA policy of every
// assignment, and appends one routed event (or a needs-dispatch event when no rule matches).
package routing

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"os"

	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/routing/internal/app"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
	"github.com/whistle-dispatch/whistle/services/routing/internal/grpcapi"
	"github.com/whistle-dispatch/whistle/services/routing/internal/store"
)

// Name is the service's name, its durable consumer and its Redis key prefix.
const Name = "routing"

//go:embed rules.yaml
var sampleRules []byte

// Config is routing's configuration.
type Config struct {
	// RulesPath is a rules file; empty means the embedded rules of the sample city.
	RulesPath string
	// Workers is how many issues the consumer routes at once; zero means the eventlog default.
	Workers int
}

// Service is the routing service.
type Service struct {
	d     platform.Deps
	cfg   Config
	store *store.Store
	app   *app.App
	api   *grpcapi.Server
}

var _ platform.Service = (*Service)(nil)

// New loads and checks the rules against the catalog and returns the service.
func New(d platform.Deps, cfg Config) (*Service, error) {
	data := sampleRules
	if cfg.RulesPath != "" {
		var err error
		if data, err = os.ReadFile(cfg.RulesPath); err != nil {
			return nil, fmt.Errorf("routing: %w", err)
		}
	}
	rules, err := domain.ParseRules(data, d.Catalog)
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	st := store.New(d.Redis)
	a := app.New(d.Log, st, d.Catalog, rules, d.Clock)
	return &Service{d: d, cfg: cfg, store: st, app: a, api: grpcapi.New(a, d.Catalog)}, nil
}

// Name returns "routing".
func (s *Service) Name() string { return Name }

// Register adds the RoutingService API to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { whistlev1.RegisterRoutingServiceServer(r, s.api) }

// Run consumes every whistle event into routing's projection and routes each raised issue, until
// ctx ends. Replicas may run at once: they share the durable consumer.
func (s *Service) Run(ctx context.Context) error { return s.consume(ctx, s.app.React) }

// Rebuild consumes every whistle event into routing's projection and routes nothing.
func (s *Service) Rebuild(ctx context.Context) error { return s.consume(ctx, nil) }

// consume runs the consumer with react, if any, after each event.
func (s *Service) consume(ctx context.Context, react eventlog.Handler) error {
	err := s.d.Log.Consume(ctx, eventlog.ConsumerConfig{Durable: Name, Workers: s.cfg.Workers, Logger: s.d.Logger,
		ReactsTo: app.ReactsTo}, s.store, react)
	if ctx.Err() != nil {
		return nil // stopped while starting is a clean stop too
	}
	return err
}
