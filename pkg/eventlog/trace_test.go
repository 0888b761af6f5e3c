package eventlog_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestAnAppendOnARecordedSpanNamesItsIssueEventAndSequence(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	otel.SetTracerProvider(tp)
	// The global provider cannot be unset: shut down, it records nothing more.
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	l := openLog(t)
	seq, err := l.Append(context.Background(), raised("A"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[attribute.Key]attribute.Value{"whistle.issue": attribute.StringValue("A"),
		"whistle.event": attribute.StringValue("raised"), "whistle.seq": attribute.Int64Value(int64(seq))}
	for _, s := range spans.Ended() {
		if s.Name() != "eventlog.Log.Append" {
			continue
		}
		got := map[attribute.Key]attribute.Value{}
		for _, kv := range s.Attributes() {
			got[kv.Key] = kv.Value
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("the append's span has %s = %v, want %v", k, got[k].Emit(), v.Emit())
			}
		}
		return
	}
	t.Fatalf("no append span among %d spans recorded", len(spans.Ended()))
}
