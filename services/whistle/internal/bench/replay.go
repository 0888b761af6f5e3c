package bench

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// runPull reads the whole event stream the lifecycles wrote, as the floor beneath a replay:
// one ordered consumer (ephemeral, acknowledging nothing) pulls every event from the first and
// decodes each into a whistlev1.Event, and nothing else. It runs on nc while the system is up
// and idle, so that it reads the same stream, on the same server, that the replay reads after.
func runPull(ctx context.Context, nc *nats.Conn, res *Result) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("bench: pull: %w", err)
	}
	stream, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		return fmt.Errorf("bench: pull: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("bench: pull: %w", err)
	}
	head := info.State.LastSeq
	if head == 0 {
		return fmt.Errorf("bench: pull: the stream %s is empty", eventlog.StreamName)
	}

	start, cpuStart := time.Now(), processCPU()
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("bench: pull: %w", err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("bench: pull: %w", err)
	}
	defer msgs.Stop()
	pctx, cancel := context.WithTimeout(ctx, lifecycleTimeout)
	defer cancel()
	stop := context.AfterFunc(pctx, msgs.Stop) // Next has no context of its own
	defer stop()
	var n int
	for {
		msg, err := msgs.Next()
		if err != nil {
			return fmt.Errorf("bench: pull: %d of %d events read: %w", n, head, err)
		}
		ev := &whistlev1.Event{}
		if err := proto.Unmarshal(msg.Data(), ev); err != nil {
			return fmt.Errorf("bench: pull: decode %s: %w", msg.Subject(), err)
		}
		n++
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("bench: pull: %w", err)
		}
		if meta.Sequence.Stream >= head {
			break
		}
	}
	res.PullWall, res.PullCPU, res.Pulled = time.Since(start), processCPU()-cpuStart, n
	return nil
}

// runReplay stops the system the lifecycles ran on and rebuilds every service's state from its
// data folder with system.Replay, as `whistle replay` does; opts are the options it ran with.
// CPU is counted over the whole call (starting NATS and redis-server included), while the rate
// is the replay's own: the events over the time the services took to apply them.
func runReplay(ctx context.Context, sys *system.System, opts system.Options, res *Result) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := sys.Stop(sctx); err != nil {
		return fmt.Errorf("bench: stop the system before replaying: %w", err)
	}
	opts.GRPCAddr, opts.HTTPAddr = "", ""
	opts.Logger = slog.New(slog.DiscardHandler)
	cpuStart := processCPU()
	r, err := system.Replay(ctx, opts)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	res.Replay, res.ReplayCPU = r, processCPU()-cpuStart
	return nil
}
