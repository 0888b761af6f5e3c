package apistatus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/apistatus"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

func TestEachSharedErrorGetsItsCodeAndInternalsStayInside(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"a refused field", fmt.Errorf("raise: %w", apiedge.Invalid("text", "is required")), codes.InvalidArgument},
		{"a command the assignment's status does not allow", fmt.Errorf("resolve: %w", &assignment.TransitionError{Reason: "report in before resolving"}), codes.FailedPrecondition},
		{"a race lost too often", fmt.Errorf("ack: %w", eventlog.ErrConflict), codes.Aborted},
		{"a quarantined issue", fmt.Errorf("ack: %w", eventlog.ErrQuarantined), codes.FailedPrecondition},
		{"a watch position the feed no longer holds", fmt.Errorf("feed department:feed:{water}: entries after 1-0 were trimmed: %w", feed.ErrGone), codes.OutOfRange},
		{"a view behind its feed", fmt.Errorf("waited 10s for event 7: %w", feed.ErrLagging), codes.Unavailable},
		{"the caller's cancellation", context.Canceled, codes.Canceled},
		{"the caller's deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"a status already decided", status.Error(codes.PermissionDenied, "not yours"), codes.PermissionDenied},
		{"redis not answering", errors.New("update intake:issue:{K7M3-QX9A}: dial tcp 127.0.0.1:6379: connection refused"), codes.Unavailable},
	}
	for _, tt := range tests {
		got := status.Convert(apistatus.Of(tt.err))
		if got.Code() != tt.want {
			t.Errorf("%s: code %v, want %v", tt.name, got.Code(), tt.want)
		}
		if strings.Contains(got.Message(), "6379") || strings.Contains(got.Message(), "{water}") {
			t.Errorf("%s: the caller reads the internals: %q", tt.name, got.Message())
		}
	}
	if apistatus.Of(nil) != nil {
		t.Error("no error became a status")
	}
	if msg := status.Convert(apistatus.Of(apiedge.Invalid("text", "is required"))).Message(); msg != "text: is required" {
		t.Errorf("a refused field reads %q; want the field and the problem", msg)
	}
}
