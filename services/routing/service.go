// Package routing is the service that decides which departments each raised issue goes to: it
// matches the category and street against a rules table, freezes the SLA policy of every
// assignment, and appends one routed event (or a needs-dispatch event when no rule matches).
package routing

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/filewatch"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/routing/internal/app"
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
	// CatalogPath is the catalog file that routing reloads with its rules; empty means the
	// embedded sample city.
	CatalogPath string
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

// New loads the rules and the catalog, checks the one against the other, and returns the service.
func New(d platform.Deps, cfg Config) (*Service, error) {
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	tables, err := app.NewTables(app.Source{RulesPath: cfg.RulesPath, CatalogPath: cfg.CatalogPath, SampleRules: sampleRules}, d.Clock.Now())
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	st := store.New(d.Redis)
	a := app.New(d.Log, st, tables, d.Clock)
	return &Service{d: d, cfg: cfg, store: st, app: a, api: grpcapi.New(a)}, nil
}

// Explainer explains where the rules would send a described issue, as `whistle route explain`
// does for one, in this process and without a stream, a store or a server: it is how the rules
// engine is measured on its own (`whistle bench routing`). It holds the rules and catalog it was
// made with and never reloads them. It is safe for concurrent use.
type Explainer struct{ app *app.App }

// NewExplainer loads and checks the rules and catalog that cfg names (RulesPath, CatalogPath;
// empty for the sample city's), as New does; the rest of cfg is not used.
func NewExplainer(cfg Config) (*Explainer, error) {
	clk := clock.Real()
	tables, err := app.NewTables(app.Source{RulesPath: cfg.RulesPath, CatalogPath: cfg.CatalogPath, SampleRules: sampleRules}, clk.Now())
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	return &Explainer{app: app.New(nil, nil, tables, clk)}, nil
}

// Hypothetical is an issue described to the Explainer: its grid, category, urgency, text and
// when it would be raised (zero for now), which the rules' time of day and kind of day read.
type Hypothetical struct {
	Grid, Category string
	Urgency        whistlev1.Urgency
	Text           string
	At             time.Time
}

// Explain checks h as the ExplainRoute call checks a described issue, tries every rule on it and
// returns the units the route summons, lead first; none when it would wait for a dispatcher.
// A grid or category the catalog lacks, or a text too long, is refused with an error naming the
// field, as the call refuses it.
func (e *Explainer) Explain(ctx context.Context, h Hypothetical) ([]string, error) {
	p, err := e.app.Explain(ctx, app.Hypothesis{Grid: h.Grid, Category: h.Category, Urgency: h.Urgency, Text: h.Text, At: h.At})
	if err != nil {
		return nil, err
	}
	units := make([]string, len(p.Assignments))
	for i, a := range p.Assignments {
		units[i] = a.Unit
	}
	return units, nil
}

// SampleRules returns the sample city's rules file, to start a city's own from.
func SampleRules() []byte { return slices.Clone(sampleRules) }

// Name returns "routing".
func (s *Service) Name() string { return Name }

// Register adds the RoutingService API to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { whistlev1.RegisterRoutingServiceServer(r, s.api) }

// Run consumes every whistle event into routing's projection and routes each raised issue, until
// ctx ends. Replicas may run at once: they share the durable consumer.
func (s *Service) Run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.watchFiles(ctx)
	return s.consume(ctx, s.app.React)
}

// watchFiles reloads the rules and catalog when either file changes, until ctx ends. It watches
// the files' folders, since an editor or a config map replaces a file rather than writing it.
// A change that fails its checks is logged and the rules in force stay.
func (s *Service) watchFiles(ctx context.Context) {
	filewatch.Watch(ctx, s.app.Tables().Paths(), "rules", s.d.Logger, func(ctx context.Context) {
		l, changed, err := s.app.Reload(ctx)
		switch {
		case err != nil:
			s.d.Logger.Error("routing: a changed rules or catalog file was refused; the rules in force stay", "version", l.Table.Version(), "err", err)
		case changed:
			s.d.Logger.Info("routing: rules reloaded", "version", l.Table.Version())
		}
	})
}

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
