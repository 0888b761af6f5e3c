package systemtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// traceID reads the trace id from a W3C traceparent header: 00-<trace id>-<span id>-<flags>.
func traceID(traceparent string) string {
	if parts := strings.Split(traceparent, "-"); len(parts) == 4 {
		return parts[1]
	}
	return ""
}

func TestOneTraceFollowsARaiseThroughIntakeAndRoutingAcrossNATS(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.NewFake(Epoch))
	c := Dial(t, sys, GridWorker("xinhua-taoyuan-01"))
	ctx, span := otel.Tracer("systemtest").Start(t.Context(), "systemtest.raise")
	res, err := c.Intake.RaiseIssue(ctx, &whistlev1.RaiseIssueRequest{
		GridId: "xinhua-taoyuan-01", CategoryId: "blocked-drain", Text: "Drain blocked by the school gate",
	})
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	id, want := res.GetIssue().GetId(), span.SpanContext().TraceID().String()

	var recs []eventlog.Record
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		recs, err = sys.Deps().Log.Read(t.Context(), id, 0)
		if err == nil && len(recs) < 2 {
			err = fmt.Errorf("%d events of %s, waiting for its routing", len(recs), id)
		}
		return err
	})
	for _, rec := range recs[:2] {
		kind := eventlog.Kind(rec.Event)
		if got := traceID(rec.Header.Get("traceparent")); got != want {
			t.Errorf("the %s event carries trace %q; want the raiser's trace %s", kind, got, want)
		}
		if got := rec.Header.Get(eventlog.HeaderCorrelationID); got != id {
			t.Errorf("the %s event carries correlation id %q; want the case %s", kind, got, id)
		}
	}
}
