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

// runBaseline makes N synchronous JetStream publishes, Concurrency at once, each waiting
// for its PubAck: the round trip every event of a lifecycle pays at least once. The
// stream is file-backed like the system's and is deleted afterwards. The publishes carry
// no message id and no expected sequence, so the baseline is the floor beneath the
// system's conditional, deduplicated appends, not an equal of them. Each publish may
// take lifecycleTimeout at most; only the publish itself is timed.
func runBaseline(ctx context.Context, nc *nats.Conn, cfg Config, res *Result) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("bench: baseline: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     baselineStream,
		Subjects: []string{"bench.>"},
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
				subject := fmt.Sprintf("bench.%d", i)
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
	return nil
}
