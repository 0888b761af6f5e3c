package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// baselineStream is the throwaway stream the baseline publishes to, apart from the
// system's own, so that it touches none of the system's data.
const baselineStream = "BENCH_BASELINE"

// AsyncWindow is how many asynchronous publishes of the baseline may await their PubAck at once.
const AsyncWindow = 256

// minAsyncPublishes is the fewest asynchronous publishes the baseline makes: at tens of thousands
// a second, fewer would be over before the rate means anything.
const minAsyncPublishes = 5000

// runBaseline publishes to a stream of its own, file-backed like the system's and deleted
// afterwards, in two ways. First N synchronous JetStream publishes, Concurrency at once, each
// waiting for its PubAck: the round trip every event of a lifecycle pays at least once. Then
// max(N, minAsyncPublishes) asynchronous ones from one caller, at most AsyncWindow awaiting their
// PubAck at any time: what the stream takes when no one waits on each write. The publishes carry
// no message id and no expected sequence, so the baseline is the floor beneath the system's
// conditional, deduplicated appends, not an equal of them. Each synchronous publish may take
// lifecycleTimeout at most; only the publish itself is timed.
func runBaseline(ctx context.Context, nc *nats.Conn, cfg Config, res *Result) error {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(AsyncWindow))
	if err != nil {
		return fmt.Errorf("bench: baseline: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     baselineStream,
		Subjects: []string{"bench.baseline.>"},
		Storage:  jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("bench: baseline: create stream: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		js.DeleteStream(dctx, baselineStream)
	}()

	// A raised event of the size the system writes, so that both sides move similar bytes.
	payload, err := proto.Marshal(&whistlev1.Event{
		Id: "K7M3-QX9A.raised", IssueId: "K7M3-QX9A", OccurredAt: timestamppb.Now(), CorrelationId: "K7M3-QX9A",
		Actor: &whistlev1.Actor{Subject: "bench-raiser", Role: "grid-worker", Scope: "xinhua-taoyuan-01"},
		Payload: &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{
			RequestId: "bench-0", GridId: "xinhua-taoyuan-01", CommunityId: "xinhua-taoyuan", StreetId: "xinhua",
			CategoryId: "noise", Urgency: whistlev1.Urgency_URGENCY_NORMAL, Text: issueText("baseline", 0),
		}},
	})
	if err != nil {
		return fmt.Errorf("bench: baseline: %w", err)
	}

	res.Publish = make([]time.Duration, cfg.N)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.Concurrency {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < cfg.N && failed.Load() == nil; i = int(next.Add(1)) - 1 {
				subject := fmt.Sprintf("bench.baseline.%d", i)
				pctx, cancel := context.WithTimeout(ctx, lifecycleTimeout)
				t0 := time.Now()
				_, err := js.Publish(pctx, subject, payload)
				res.Publish[i] = time.Since(t0)
				cancel()
				if err != nil {
					err = fmt.Errorf("bench: baseline publish: %w", err)
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	res.PublishWall = time.Since(start)
	if err := failed.Load(); err != nil {
		return *err
	}
	return runAsyncBaseline(ctx, js, payload, max(cfg.N, minAsyncPublishes), res)
}

// runAsyncBaseline makes n asynchronous publishes of payload, as fast as the window of pending
// acknowledgements lets it, and times them from the first publish to the last PubAck. A full
// window makes PublishAsync wait for a PubAck, for lifecycleTimeout at most.
func runAsyncBaseline(ctx context.Context, js jetstream.JetStream, payload []byte, n int, res *Result) error {
	futures := make([]jetstream.PubAckFuture, 0, n)
	start := time.Now()
	for i := range n {
		f, err := js.PublishAsync(fmt.Sprintf("bench.baseline.async.%d", i), payload, jetstream.WithStallWait(lifecycleTimeout))
		if err != nil {
			return fmt.Errorf("bench: baseline async publish: %w", err)
		}
		futures = append(futures, f)
	}
	actx, cancel := context.WithTimeout(ctx, lifecycleTimeout)
	defer cancel()
	select {
	case <-js.PublishAsyncComplete():
	case <-actx.Done():
		return fmt.Errorf("bench: baseline async publish: %d PubAcks still pending: %w", js.PublishAsyncPending(), actx.Err())
	}
	res.AsyncPublishWall = time.Since(start)
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("bench: baseline async publish: %w", err)
		}
	}
	res.AsyncPublishes = n
	return nil
}
