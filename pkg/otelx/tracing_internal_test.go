package otelx

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

// startTrace starts a span with tp's tracer under parent, and returns its context, whether it
// was recording, and the W3C trace context it would send on a call or an event.
func startTrace(tp trace.TracerProvider, parent context.Context) (trace.SpanContext, bool, propagation.MapCarrier) {
	_, span := tp.Tracer("otelx_test").Start(parent, "otelx_test.work")
	defer span.End()
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpan(context.Background(), span), carrier)
	return span.SpanContext(), span.IsRecording(), carrier
}

// remoteParent is ctx with a caller's trace context, sampled or not.
func remoteParent(sampled bool) (context.Context, trace.SpanContext) {
	cfg := trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		Remote:  true,
	}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	sc := trace.NewSpanContext(cfg)
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

func TestWithoutAnExporterSpansAreNotRecordedButTheTraceContextTravels(t *testing.T) {
	tp, err := tracerProvider(t.Context(), Config{ServiceName: "test"}, resource.Empty())
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())

	root, recording, carrier := startTrace(tp, context.Background())
	if recording || root.IsSampled() {
		t.Errorf("a span this process started was recorded or sampled: %v", root)
	}
	if !root.IsValid() || carrier.Get("traceparent") == "" {
		t.Fatalf("a span this process started has no trace context to pass on: %v, %v", root, carrier)
	}
	next := propagation.TraceContext{}.Extract(context.Background(), carrier)
	child, _, _ := startTrace(tp, next)
	if child.TraceID() != root.TraceID() {
		t.Errorf("the next process's span is in trace %s; want its caller's %s", child.TraceID(), root.TraceID())
	}

	for _, sampled := range []bool{true, false} {
		parent, psc := remoteParent(sampled)
		span, recording, carrier := startTrace(tp, parent)
		if span.TraceID() != psc.TraceID() {
			t.Errorf("caller sampled %v: span in trace %s; want the caller's %s", sampled, span.TraceID(), psc.TraceID())
		}
		if recording != sampled || span.IsSampled() != sampled {
			t.Errorf("caller sampled %v: span recording %v, sampled %v; want both %v", sampled, recording, span.IsSampled(), sampled)
		}
		if got := carrier.Get("traceparent"); got == "" {
			t.Errorf("caller sampled %v: no trace context passed on", sampled)
		}
	}
}

func TestWithAnOTLPExporterEveryTraceIsRecorded(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:1") // dialled lazily, never reached
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	tp, err := tracerProvider(t.Context(), Config{ServiceName: "test", OTLPTraces: true}, resource.Empty())
	if err != nil {
		t.Fatal(err)
	}
	root, recording, _ := startTrace(tp, context.Background())
	if !recording || !root.IsSampled() {
		t.Errorf("with OTLP a span this process started was not recorded and sampled: %v", root)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = tp.Shutdown(ctx) // the export fails: nothing listens
}
