// Package platform is what every Whistle service receives from the process that runs it, and the
// shape every service offers back, so that `whistle up`, `whistle serve NAME` and tests start the
// services the same way.
package platform

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// Deps are the connections and shared vocabulary a service runs on. The process that runs the
// service owns them: it opens them before and closes them after.
type Deps struct {
	Log     *eventlog.Log
	NATS    *nats.Conn
	Redis   redis.UniversalClient
	Catalog *catalog.Catalog
	// Rosters are the units' duty rosters; nil means the catalog's default (see
	// roster.ForCatalog).
	Rosters *roster.Rosters
	Clock   clock.Clock
	Logger  *slog.Logger
}

// Service is one of the four services as the running process sees it.
type Service interface {
	// Name is the service's name; it is also its durable consumer's name and its Redis key prefix.
	Name() string
	// Register adds the service's gRPC API to a server.
	Register(s grpc.ServiceRegistrar)
	// Run consumes events (and runs any timers) until ctx ends; it returns nil on a clean stop.
	Run(ctx context.Context) error
	// Rebuild only applies events to the service's projection until ctx ends: it reacts to
	// nothing and fires no timer, so it appends nothing. It is what a replay runs.
	Rebuild(ctx context.Context) error
}

// Reset deletes a service's derived state, its Redis keys and its durable consumer, so that the
// next Run rebuilds the state from the first event of the stream.
func Reset(ctx context.Context, d Deps, s Service) error {
	if err := redisx.DeletePrefix(ctx, d.Redis, s.Name()+":"); err != nil {
		return fmt.Errorf("reset %s: %w", s.Name(), err)
	}
	return d.Log.DeleteConsumer(ctx, s.Name())
}
