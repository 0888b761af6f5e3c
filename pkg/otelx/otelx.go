// Package otelx sets up OpenTelemetry for a Whistle process: traces (exported over OTLP
// when the standard environment asks for it), W3C trace context in gRPC and NATS
// headers, and metrics served in Prometheus format.
package otelx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Config names the process in every span and metric.
type Config struct {
	ServiceName    string
	ServiceVersion string
	// OTLPTraces turns on the OTLP gRPC trace exporter, which then reads its endpoint,
	// headers and TLS settings from the standard OTEL_EXPORTER_OTLP_* variables.
	// FromEnv sets it when one of the endpoint variables is set. Without it no span is
	// recorded, only trace context passed on (see tracerProvider).
	OTLPTraces bool
}

// FromEnv returns a Config for the named service, with OTLPTraces set when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. It is the
// one place this package reads the environment.
func FromEnv(serviceName, serviceVersion string) Config {
	return Config{
		ServiceName:    serviceName,
		ServiceVersion: serviceVersion,
		OTLPTraces:     os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "",
	}
}

// Telemetry owns the providers Setup installed; Shutdown flushes and stops them.
type Telemetry struct {
	tracer  *sdktrace.TracerProvider
	meter   *sdkmetric.MeterProvider
	metrics http.Handler
}

var (
	processMu        sync.Mutex
	processTelemetry *Telemetry
)

// Setup installs a global TracerProvider, MeterProvider and the TraceContext+Baggage
// propagator, once per process: instruments that packages created from the global meter
// before Setup are bound to the first provider installed, so a second provider would never
// see them. Later calls (tests start several systems in one process) return the same
// Telemetry. Metrics go to a Prometheus registry of its own (with Go and process
// collectors), never the default one.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.ServiceName == "" {
		return nil, errors.New("otelx: Config.ServiceName is required")
	}
	processMu.Lock()
	defer processMu.Unlock()
	if processTelemetry != nil {
		return processTelemetry, nil
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cfg.ServiceVersion)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the code
	)
	if err != nil {
		return nil, fmt.Errorf("otelx: resource: %w", err)
	}

	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("otelx: register collector: %w", err)
		}
	}
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("otelx: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithResource(res))

	tp, err := tracerProvider(ctx, cfg, res)
	if err != nil {
		_ = mp.Shutdown(ctx)
		return nil, err
	}

	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	processTelemetry = &Telemetry{
		tracer:  tp,
		meter:   mp,
		metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
	}
	return processTelemetry, nil
}

// tracerProvider returns the process's TracerProvider. With OTLPTraces it exports in batches
// and samples as the SDK does by default (every trace, or as OTEL_TRACES_SAMPLER says).
// Without, no span is ever read, so recording one (its attributes, times and status) is work
// for nothing: the provider then samples no trace this process starts, and spans only the
// traces a caller's sampled trace context asks for, whose flag it passes on. Every span still
// gets its ids and carries its trace's context, so a trace id still rides each call and
// event from intake on.
func tracerProvider(ctx context.Context, cfg Config, res *resource.Resource) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if !cfg.OTLPTraces {
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
		return sdktrace.NewTracerProvider(opts...), nil
	}
	// The exporter connects lazily, so a collector that is down delays spans, not the start.
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otelx: OTLP trace exporter: %w", err)
	}
	return sdktrace.NewTracerProvider(append(opts, sdktrace.WithBatcher(exp))...), nil
}

// MetricsHandler serves this Telemetry's metrics in Prometheus format, for /metrics.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metrics }

// Shutdown flushes pending spans and metrics; ctx bounds the flush. The providers live as
// long as the process, since Setup hands the same ones to every caller.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.tracer.ForceFlush(ctx), t.meter.ForceFlush(ctx))
}
