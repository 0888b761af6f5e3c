// Package apistatus turns what a service's application layer returns into the gRPC status its
// caller receives, for the errors every service shares: a refused field, a command the assignment
// machine does not allow, a race lost too often, a watch that cannot resume or must resume, the
// caller's own cancellation or deadline, and a status already decided (an access check, a failed
// send). Anything else is a failure of the servers behind (Redis or NATS not answering):
// it is logged in full and answered as Unavailable without its internals, which name addresses
// and keys that are no business of a caller.
package apistatus

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// Unavailable is what a caller reads when the servers behind a service failed.
const Unavailable = "the service could not complete the call just now; try again (the cause is in its log)"

// Of returns the status for err, or nil for nil. A service maps its own errors first (not found)
// and hands the rest here.
func Of(err error) error {
	var fe *apiedge.FieldError
	var te *assignment.TransitionError
	var ie *assignment.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return status.Error(codes.InvalidArgument, fe.Error())
	case errors.As(err, &ie):
		return status.Error(codes.InvalidArgument, ie.Error())
	case errors.As(err, &te):
		return status.Error(codes.FailedPrecondition, te.Error())
	case errors.Is(err, eventlog.ErrConflict):
		return status.Error(codes.Aborted, "the issue kept changing while you acted; try again")
	case errors.Is(err, eventlog.ErrQuarantined):
		// The state no longer follows the stream: no command may decide on it until an
		// operator has dealt with the event that could not apply. The message names that event.
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, feed.ErrGone):
		// A watch cannot resume where the client asks; it may watch again from what the view
		// holds now.
		return status.Error(codes.OutOfRange, feed.ErrGone.Error()+"; watch again without a position")
	case errors.Is(err, feed.ErrLagging):
		// The watch stopped, losing nothing: the client resumes from its last position.
		slog.Warn("watch stopped", "err", err)
		return status.Error(codes.Unavailable, feed.ErrLagging.Error()+"; resume from the last position received")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	slog.Error("call failed", "err", err)
	return status.Error(codes.Unavailable, Unavailable)
}
