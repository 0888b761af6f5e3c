package otelx_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/whistle-dispatch/whistle/pkg/otelx"
)

// setup runs Setup and shuts the result down when the test ends.
func setup(t *testing.T, name string) *otelx.Telemetry {
	t.Helper()
	tel, err := otelx.Setup(t.Context(), otelx.Config{ServiceName: name, ServiceVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// scrape returns what the metrics handler serves.
func scrape(t *testing.T, tel *otelx.Telemetry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// These tests are not parallel: Setup installs process-wide providers.

func TestInstrumentsMadeBeforeSetupReachTheMetricsOfEverySetup(t *testing.T) {
	// Packages create their instruments from the global meter at init, before any Setup.
	counter, err := otel.Meter("otelx_test").Int64Counter("whistle_test_events")
	if err != nil {
		t.Fatal(err)
	}
	first := setup(t, "first")
	second := setup(t, "second")
	if first != second {
		t.Fatal("a second Setup in one process installed new providers")
	}
	counter.Add(t.Context(), 3)

	got := scrape(t, second)
	for _, want := range []string{"whistle_test_events_total", "go_goroutines", "process_cpu_seconds_total", `service_name="first"`} {
		if !strings.Contains(got, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestTraceContextRidesNATSHeaders(t *testing.T) {
	setup(t, "nats")
	ctx, span := otel.Tracer("otelx_test").Start(t.Context(), "otelx_test.publish")
	defer span.End()

	h := nats.Header{}
	otelx.InjectNATS(ctx, h)
	if h.Get("traceparent") == "" {
		t.Fatalf("no traceparent header after InjectNATS: %v", h)
	}
	got := trace.SpanContextFromContext(otelx.ExtractNATS(context.Background(), h))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Fatalf("extracted %v, want the remote parent %v", got, span.SpanContext())
	}
	otelx.InjectNATS(ctx, nil) // must not panic on a message without headers
}

func TestSetupRequiresAServiceName(t *testing.T) {
	if _, err := otelx.Setup(t.Context(), otelx.Config{}); err == nil {
		t.Fatal("Setup without a service name succeeded")
	}
}

func TestFromEnvTurnsOnOTLPOnlyWhenAnEndpointIsSet(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	if otelx.FromEnv("svc", "v").OTLPTraces {
		t.Fatal("OTLP on without an endpoint")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4317")
	cfg := otelx.FromEnv("svc", "v")
	if !cfg.OTLPTraces || cfg.ServiceName != "svc" {
		t.Fatalf("FromEnv = %+v, want OTLP on for svc", cfg)
	}
	tel, err := otelx.Setup(t.Context(), cfg) // the exporter dials lazily, so no collector is needed
	if err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}
