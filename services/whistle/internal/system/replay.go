package system

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/platform"
)

// Replay settling: every consumer must show nothing pending this many polls in a row
// before the rebuild counts as done, so that events a service appends while catching
// up (its reactions) are consumed too.
const (
	replayPoll      = 100 * time.Millisecond
	replaySettledIn = 5
)

// Replay rebuilds every service's Redis state from the stream: it starts the same
// infrastructure as Start (without listeners), resets each service (its Redis keys and
// its durable consumer), runs the services until each consumer has caught up with the
// stream and stays caught up, and stops. ctx bounds the whole rebuild.
func Replay(ctx context.Context, opts Options) (err error) {
	opts = withDefaults(opts)
	logConfig(opts, "whistle replay starting")
	in, err := openInfra(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, in.close(context.WithoutCancel(ctx))) }()

	for _, svc := range in.services {
		if err := platform.Reset(ctx, in.deps, svc); err != nil {
			return fmt.Errorf("system: replay: %w", err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	failed := make(chan error, len(in.services))
	done := make(chan struct{})
	go func() {
		defer close(done)
		runAll(runCtx, in.services, failed)
	}()
	err = waitCaughtUp(runCtx, in, failed)
	cancel()
	<-done
	if err != nil {
		return fmt.Errorf("system: replay: %w", err)
	}
	opts.Logger.Info("whistle replay finished", "services", len(in.services))
	return nil
}

// runAll runs every service until ctx ends and reports one that stops before.
func runAll(ctx context.Context, services []platform.Service, failed chan<- error) {
	var wg sync.WaitGroup
	for _, svc := range services {
		wg.Go(func() {
			err := svc.Run(ctx)
			if ctx.Err() == nil {
				failed <- fmt.Errorf("%s stopped unasked: %v", svc.Name(), err)
			}
		})
	}
	wg.Wait()
}

// waitCaughtUp polls every service's durable consumer until none has anything pending
// for replaySettledIn polls in a row. A consumer that does not exist yet (its service
// has not created it) counts as behind.
func waitCaughtUp(ctx context.Context, in *infra, failed <-chan error) error {
	tick := time.NewTicker(replayPoll)
	defer tick.Stop()
	settled := 0
	for settled < replaySettledIn {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return err
		case <-tick.C:
		}
		settled++
		for _, svc := range in.services {
			if n, err := in.deps.Log.Pending(ctx, svc.Name()); err != nil || n > 0 {
				settled = 0
				break
			}
		}
	}
	return nil
}
