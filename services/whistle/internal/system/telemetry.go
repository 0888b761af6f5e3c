package system

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/nats-io/nats-server/v2/server"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/whistle-dispatch/whistle/pkg/otelx"
)

var (
	meter = otel.Meter("github.com/whistle-dispatch/whistle/services/whistle/internal/system")
	// natsMessages is the embedded NATS server's own message counters, so that what the system
	// costs in NATS messages can be read off /metrics, as an external server's monitoring
	// endpoint (/varz) would tell it.
	natsMessages, _ = meter.Int64ObservableCounter("whistle.nats.server.messages",
		metric.WithDescription("Messages the embedded NATS server received from its connections (direction in) and delivered to subscriptions (direction out), its varz in_msgs and out_msgs; absent when NATS is external."))
	// ready is what /healthz answers, as a number Prometheus keeps: an operator's alert on a
	// service without a ready replica reads it, where a probe's answer is seen only by the
	// orchestrator that sent it.
	ready, _ = meter.Int64ObservableGauge("whistle.ready",
		metric.WithDescription("1 while this process answers /healthz as ready (NATS connected, Redis answering, no consumer retrying a failure; for a gateway, Redis and every service answering), 0 while it does not, for each service it runs."))
	natsIn  = metric.WithAttributeSet(attribute.NewSet(attribute.String("direction", "in")))
	natsOut = metric.WithAttributeSet(attribute.NewSet(attribute.String("direction", "out")))
)

// telemetry returns the process's OpenTelemetry setup; every System in a process shares it,
// since otelx installs its providers once per process.
func telemetry(ctx context.Context) (*otelx.Telemetry, error) {
	tel, err := otelx.Setup(context.WithoutCancel(ctx), otelx.FromEnv("whistle", version()))
	if err != nil {
		return nil, fmt.Errorf("system: telemetry: %w", err)
	}
	return tel, nil
}

// observeNATS reports srv's message counters in whistle.nats.server.messages at every collection,
// until the registration it returns is unregistered (when the system stops and srv with it).
func observeNATS(srv *server.Server) (metric.Registration, error) {
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		v, err := srv.Varz(nil)
		if err != nil {
			return err
		}
		o.ObserveInt64(natsMessages, v.InMsgs, natsIn)
		o.ObserveInt64(natsMessages, v.OutMsgs, natsOut)
		return nil
	}, natsMessages)
	if err != nil {
		return nil, fmt.Errorf("system: telemetry: %w", err)
	}
	return reg, nil
}

// observeReady reports in whistle.ready, at every collection, whether the process is healthy as
// /healthz judges it, once for each service it runs, until the registration it returns is
// unregistered.
func observeReady(services []string, healthy func(context.Context) error) (metric.Registration, error) {
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		v := int64(1)
		if healthy(ctx) != nil {
			v = 0
		}
		for _, name := range services {
			o.ObserveInt64(ready, v, otelx.Attributes("service", name))
		}
		return nil
	}, ready)
	if err != nil {
		return nil, fmt.Errorf("system: telemetry: %w", err)
	}
	return reg, nil
}

// version is the main module's version as the Go toolchain recorded it at build time.
func version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "dev"
}
