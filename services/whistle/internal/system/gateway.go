package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/gateway"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// GatewayName is the role of a process that serves only the people's surfaces, the web console
// and Open311, in front of services that run in processes of their own (whistle serve gateway).
const GatewayName = "gateway"

// gatewayReadyTimeout bounds one readiness check of the services behind a gateway.
const gatewayReadyTimeout = 2 * time.Second

// GatewayOptions configure a gateway process, read once at start.
type GatewayOptions struct {
	// DataDir holds the token signing key the services check tokens with; it must exist, since a
	// key made up here would sign sessions the services refuse. Required.
	DataDir string
	// RedisURL is where the console keeps its sessions and spent sign-in links (keys gateway:*).
	// Required.
	RedisURL string
	// Targets are the gRPC addresses of the four services. Required.
	Targets gateway.Targets
	// HTTPAddr is where /healthz, /metrics, the console and Open311 listen, and PprofAddr the
	// profiler's endpoints (off when empty); see Options.
	HTTPAddr, PprofAddr string
	// CatalogPath is the city's catalog, read for its time zone; empty means the sample city.
	CatalogPath string
	// MapTiles is the city's tile server beneath the console's map; empty draws the grids alone.
	MapTiles string
	// Logger receives the process's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Gateway is a running gateway process. Stop it with Stop.
type Gateway struct {
	rdb       redis.UniversalClient
	gateway   *gateway.Gateway
	telemetry *otelx.Telemetry
	readyStat metric.Registration
	front     *front
	running   sync.WaitGroup // the HTTP server
	logger    *slog.Logger
	*ending

	stopOnce sync.Once
	stopErr  error
}

// StartGateway starts a gateway process and returns once its HTTP server listens. The services
// it calls need not be up yet: /healthz answers 503 until each of them answers its health check.
func StartGateway(ctx context.Context, opts GatewayOptions) (_ *Gateway, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DataDir == "" || opts.RedisURL == "" {
		return nil, errors.New("system: a gateway needs a data folder with the token key and a Redis URL")
	}
	opts.Logger.Info("whistle gateway starting", "data", opts.DataDir, "redis", describeURL(opts.RedisURL, ""),
		"http", opts.HTTPAddr, "intake", opts.Targets.Intake, "routing", opts.Targets.Routing,
		"department", opts.Targets.Department, "escalation", opts.Targets.Escalation)
	g := &Gateway{logger: opts.Logger, ending: newEnding(opts.Logger)}
	defer func() {
		if err != nil {
			if g.front != nil {
				_ = g.front.close()
			}
			_ = g.release(context.WithoutCancel(ctx))
		}
	}()
	key, err := authx.LoadKey(filepath.Join(opts.DataDir, "token.key"))
	if err != nil {
		return nil, fmt.Errorf("system: gateway: %w", err)
	}
	cat, err := catalog.Load(opts.CatalogPath)
	if err != nil {
		return nil, fmt.Errorf("system: catalog: %w", err)
	}
	if g.rdb, err = redisx.Connect(ctx, opts.RedisURL); err != nil {
		return nil, err
	}
	if g.gateway, err = gateway.New(gateway.Config{Targets: opts.Targets, Authority: authx.NewAuthority(key),
		Zone: cat.TimeZone(), Contact: "the city's operator of Whistle", Redis: g.rdb, MapTiles: opts.MapTiles}); err != nil {
		return nil, err
	}
	if g.telemetry, err = telemetry(ctx); err != nil {
		return nil, err
	}
	if g.readyStat, err = observeReady([]string{GatewayName}, g.healthy); err != nil {
		return nil, err
	}
	if g.front, err = openFront(opts.HTTPAddr, opts.PprofAddr, g.healthy, g.telemetry); err != nil {
		return nil, err
	}
	g.gateway.Mount(g.front.mux)
	g.front.serve(&g.running, g.ending)
	opts.Logger.Info("whistle gateway started", "http", g.HTTPAddr())
	return g, nil
}

// healthy reports whether Redis answers and every service behind the gateway answers its health
// check: a gateway that cannot reach them would serve people only errors.
func (g *Gateway) healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, gatewayReadyTimeout)
	defer cancel()
	if err := g.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return g.gateway.Ready(ctx)
}

// Stop lets requests in flight finish within ctx, then closes the connections to the services
// and to Redis. It is safe to call more than once, and after Wait returned.
func (g *Gateway) Stop(ctx context.Context) error {
	g.stopOnce.Do(func() {
		g.stopErr = errors.Join(g.front.shutdown(ctx), g.release(ctx))
		g.running.Wait()
		g.stopped()
		g.logger.Info("whistle gateway stopped", "err", g.stopErr)
	})
	return g.stopErr
}

// release closes what a start opened but the HTTP listeners, in the reverse order.
func (g *Gateway) release(ctx context.Context) error {
	var errs []error
	if g.readyStat != nil {
		errs = append(errs, g.readyStat.Unregister())
	}
	if g.telemetry != nil {
		errs = append(errs, g.telemetry.Shutdown(ctx))
	}
	if g.gateway != nil {
		errs = append(errs, g.gateway.Close())
	}
	if g.rdb != nil {
		if err := g.rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HTTPAddr returns the address the HTTP server (/healthz, /metrics, /console/, /open311/v2/) listens on.
func (g *Gateway) HTTPAddr() string { return g.front.httpLis.Addr().String() }

// PprofAddr returns the address the profiler's endpoints listen on, "" when they are off.
func (g *Gateway) PprofAddr() string { return g.front.pprofAddr() }
