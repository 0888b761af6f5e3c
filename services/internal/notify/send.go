package notify

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
)

// randInt63n draws from [0, n).
func randInt63n(n int64) int64 { return rand.Int64N(n) }

// backoff is the wait after attempt a failed: between half and all of base·2^(a-1), capped at
// max ("equal jitter": replicas retrying together spread out, yet never retry sooner than half
// the step, which a receiver that is struggling can count on).
func (n *Notifications) backoff(a int) time.Duration {
	d := n.cfg.BaseBackoff
	for i := 1; i < a && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	half := d / 2
	return half + time.Duration(n.jitter(int64(d-half)+1))
}

// send runs the senders until ctx ends: it claims due deliveries, as many as there are idle
// senders, and sleeps until the next one is due, something is queued here, or poll passes.
func (n *Notifications) send(ctx context.Context) {
	idle := make(chan struct{}, n.cfg.Senders)
	for range n.cfg.Senders {
		idle <- struct{}{}
	}
	done := make(chan struct{}, n.cfg.Senders) // a sender finished: claim again
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		claimed, err := n.claim(ctx, len(idle))
		if err != nil && ctx.Err() == nil {
			n.logger.Warn("notify: claiming deliveries failed; trying again", "err", err)
		}
		for _, id := range claimed {
			<-idle
			wg.Go(func() {
				defer func() {
					idle <- struct{}{}
					select { // a signal already waiting says the same
					case done <- struct{}{}:
					default:
					}
				}()
				n.attempt(ctx, id)
			})
		}
		wait := n.poll
		if next, ok, err := n.outbox.nextDue(ctx); err == nil && ok {
			wait = min(wait, next.Sub(n.clock.Now()))
		}
		if len(idle) == 0 {
			wait = n.poll // nobody to send: wait for a sender to finish
		}
		if wait <= 0 {
			continue // due already: claim it
		}
		select {
		case <-ctx.Done():
		case <-n.wake:
		case <-done:
		case <-n.clock.After(wait):
		}
	}
}

// claim takes up to limit due deliveries, from every shard in turn.
func (n *Notifications) claim(ctx context.Context, limit int) ([]string, error) {
	var out []string
	now := n.clock.Now()
	for shard := range eventlog.Partitions {
		if len(out) >= limit {
			break
		}
		ids, err := n.outbox.claim(ctx, shard, now, n.cfg.lease(), limit-len(out))
		if err != nil {
			return out, err
		}
		out = append(out, ids...)
	}
	return out, nil
}

// attempt tries one claimed delivery once and records the attempt: delivered, failed for good, or
// queued again after its back-off.
func (n *Notifications) attempt(ctx context.Context, id string) {
	d, err := n.outbox.get(ctx, id)
	if errors.Is(err, errNoDelivery) {
		_ = n.outbox.drop(ctx, id)
		return
	}
	if err != nil {
		return // the lease runs out and it is claimed again
	}
	if d.Status != StatusPending {
		_ = n.outbox.drop(ctx, id)
		return
	}
	a := Attempt{N: len(d.Attempts) + 1, At: n.clock.Now()}
	began := time.Now() // the duration is a measurement, not a decision: the machine's clock
	code, err := n.notifier.Notify(ctx, d.Notification)
	a.Duration, a.Code = time.Since(began), code
	if ctx.Err() != nil {
		return // stopping: the attempt did not end on its own; the lease runs out and it is tried again
	}
	outcome := "delivered"
	switch {
	case err == nil:
		d.Status, d.NextAt = StatusDelivered, time.Time{}
	case errors.Is(err, ErrRefused) || a.N >= n.cfg.MaxAttempts:
		a.Error = err.Error()
		d.Status, d.NextAt = StatusFailed, time.Time{}
		outcome = "refused"
		if !errors.Is(err, ErrRefused) {
			outcome = "retry"
		}
	default:
		a.Error = err.Error()
		d.NextAt = a.At.Add(n.backoff(a.N))
		outcome = "retry"
	}
	d.Attempts = append(d.Attempts, a)
	attemptCount.Add(ctx, 1, otelx.Attributes("outcome", outcome))
	attemptTime.Record(ctx, a.Duration.Seconds(), otelx.Attributes("outcome", outcome))
	if err := n.outbox.save(ctx, d); err != nil {
		n.logger.Warn("notify: recording an attempt failed; the delivery will be tried again", "id", id, "err", err)
		return
	}
	if d.Status != StatusPending {
		deliveredCount.Add(ctx, 1, otelx.Attributes("outcome", string(d.Status)))
	}
	n.logger.Debug("notify: attempt", "id", id, "n", a.N, "code", a.Code, "err", a.Error, "status", d.Status)
}
