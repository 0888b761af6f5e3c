package system

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
)

// replayPoll is how often Replay looks whether every consumer has caught up.
const replayPoll = 50 * time.Millisecond

// ReplayResult is what a rebuild did.
type ReplayResult struct {
	// Events is how many events the stream held when the rebuild began; every service applied them.
	Events uint64
	// Elapsed is how long the services took to apply them.
	Elapsed time.Duration
	// Appended is how many events the stream gained while the rebuild ran: none of them the
	// rebuild's, which appends nothing, so 0 unless another process wrote to the stream meanwhile.
	Appended uint64
	// Quarantined counts, per service, the issues its rebuilt state holds quarantined: those with
	// an event it can never apply.
	Quarantined map[string]int64
}

// Rate is the events each service applied per second.
func (r ReplayResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// Replay rebuilds every service's Redis state from the stream and does nothing else: it starts the
// same infrastructure as Start (without listeners), resets each service (its Redis keys and its
// durable consumer), and runs each service's Rebuild, which applies events to its projection and
// reacts to none and fires no timer, on a log that refuses every append, until each consumer has
// applied the stream up to where it stood at the start. ctx bounds the whole rebuild.
func Replay(ctx context.Context, opts Options) (res ReplayResult, err error) {
	opts = withDefaults(opts)
	logConfig(opts, "whistle replay starting")
	in, err := openInfra(ctx, opts, true)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, in.close(context.WithoutCancel(ctx))) }()

	for _, svc := range in.services {
		if err := platform.Reset(ctx, in.deps, svc); err != nil {
			return res, fmt.Errorf("system: replay: %w", err)
		}
		if err := recordLayout(ctx, in.deps.Redis, svc.Name()); err != nil {
			return res, fmt.Errorf("system: replay: %w", err)
		}
	}
	if res.Events, err = in.deps.Log.Head(ctx); err != nil {
		return res, fmt.Errorf("system: replay: %w", err)
	}
	began := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	failed := make(chan error, len(in.services))
	done := make(chan struct{})
	go func() {
		defer close(done)
		rebuildAll(runCtx, in.services, failed)
	}()
	err = waitApplied(runCtx, in, res.Events, failed)
	res.Elapsed = time.Since(began)
	cancel()
	<-done
	if err != nil {
		return res, fmt.Errorf("system: replay: %w", err)
	}
	head, err := in.deps.Log.Head(ctx)
	if err != nil {
		return res, fmt.Errorf("system: replay: %w", err)
	}
	res.Appended = head - res.Events
	res.Quarantined = map[string]int64{}
	for _, svc := range in.services {
		n, err := in.deps.Redis.ZCard(ctx, redisdoc.QuarantinedKey(svc.Name())).Result()
		if err != nil {
			return res, fmt.Errorf("system: replay: %w", err)
		}
		res.Quarantined[svc.Name()] = n
	}
	opts.Logger.Info("whistle replay finished", "services", len(in.services), "events", res.Events,
		"elapsed", res.Elapsed.Round(time.Millisecond), "events_per_second", int(res.Rate()), "quarantined", res.Quarantined)
	return res, nil
}

// rebuildAll runs every service's Rebuild until ctx ends and reports one that stops before.
func rebuildAll(ctx context.Context, services []platform.Service, failed chan<- error) {
	var wg sync.WaitGroup
	for _, svc := range services {
		wg.Go(func() {
			err := svc.Rebuild(ctx)
			if ctx.Err() == nil {
				failed <- fmt.Errorf("%s stopped unasked: %v", svc.Name(), err)
			}
		})
	}
	wg.Wait()
}

// waitApplied polls every service's durable consumer until each has applied the stream up to
// head. A consumer that does not exist yet (its service has not created it) counts as behind.
func waitApplied(ctx context.Context, in *infra, head uint64, failed <-chan error) error {
	tick := time.NewTicker(replayPoll)
	defer tick.Stop()
	for {
		behind := false
		for _, svc := range in.services {
			if applied, err := in.deps.Log.Applied(ctx, svc.Name()); err != nil || applied < head {
				behind = true
				break
			}
		}
		if !behind {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return err
		case <-tick.C:
		}
	}
}
