package eventlog

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/whistle-dispatch/whistle/pkg/otelx"
)

// Consumer defaults; each can be set in ConsumerConfig.
const (
	DefaultWorkers       = 8
	DefaultMaxAckPending = 1024
	DefaultAckWait       = 30 * time.Second
	// MaxRetryDelay caps the growing delay before a failed message is delivered again.
	MaxRetryDelay = 30 * time.Second
)

// ErrPermanent marks a handler failure that no retry can mend: the message is terminated and
// copied to the dead-letter stream with the reason.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that the consumer gives up on the message at once.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Handler processes one record. Returning nil acknowledges it; an error wrapping ErrPermanent
// dead-letters it; any other error has it delivered again after a delay.
type Handler func(ctx context.Context, rec Record) error

// ConsumerConfig names a durable consumer and sizes its work.
type ConsumerConfig struct {
	// Durable is the consumer's name, one per service; replicas of a service share it.
	Durable string
	// Workers is how many issues are processed at once; one issue's events always go to the same
	// worker, so they are handled in the order they arrive.
	Workers       int
	MaxAckPending int
	AckWait       time.Duration
	Logger        *slog.Logger
}

var (
	meter            = otel.Meter("github.com/whistle-dispatch/whistle/pkg/eventlog")
	eventsProcessed  metric.Int64Counter
	consumerLagGauge metric.Int64ObservableGauge
	lagSources       sync.Map // durable name -> jetstream.Consumer
)

func init() {
	eventsProcessed, _ = meter.Int64Counter("whistle.events.processed",
		metric.WithDescription("Whistle events handled by a service's consumer, by outcome: applied, retried, dead."))
	consumerLagGauge, _ = meter.Int64ObservableGauge("whistle.consumer.lag",
		metric.WithDescription("Events in the stream that a service's consumer has not yet processed."))
	_, _ = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		lagSources.Range(func(k, v any) bool {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if info, err := v.(jetstream.Consumer).Info(ctx); err == nil {
				o.ObserveInt64(consumerLagGauge, int64(info.NumPending)+int64(info.NumAckPending),
					metric.WithAttributes(attribute.String("consumer", k.(string))))
			}
			return true
		})
		return nil
	}, consumerLagGauge)
}

// withDefaults fills in what cfg leaves at zero.
func (cfg ConsumerConfig) withDefaults() ConsumerConfig {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = DefaultMaxAckPending
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// EnsureConsumer creates the durable consumer that Consume with cfg will use, if it does not
// exist yet. A process calls it for each service before it serves the API, so that what a
// service's API reads of its consumer (such as Applied) is there from the first call.
func (l *Log) EnsureConsumer(ctx context.Context, cfg ConsumerConfig) error {
	_, err := l.ensureConsumer(ctx, cfg.withDefaults())
	return err
}

// ensureConsumer creates or updates the durable consumer cfg describes over every whistle event.
func (l *Log) ensureConsumer(ctx context.Context, cfg ConsumerConfig) (jetstream.Consumer, error) {
	cons, err := l.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: SubjectRoot + ".>",
		MaxAckPending: cfg.MaxAckPending,
		AckWait:       cfg.AckWait,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: consumer %s: %w", cfg.Durable, err)
	}
	return cons, nil
}

// Consume runs a durable consumer over every whistle event until ctx ends. Each message meets an
// explicit fate: acknowledged when handled, delivered again after a growing delay on a transient
// failure, terminated and dead-lettered when it can never succeed.
func (l *Log) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) error {
	cfg = cfg.withDefaults()
	cons, err := l.ensureConsumer(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it began
		}
		return err
	}
	lagSources.Store(cfg.Durable, cons)
	defer lagSources.Delete(cfg.Durable)

	iter, err := cons.Messages(jetstream.PullMaxMessages(cfg.MaxAckPending / 2))
	if err != nil {
		return fmt.Errorf("eventlog: consume %s: %w", cfg.Durable, err)
	}
	queues := make([]chan jetstream.Msg, cfg.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan jetstream.Msg, 64)
		wg.Go(func() {
			for msg := range queues[i] {
				l.handle(ctx, cfg, h, msg)
			}
		})
	}
	go func() {
		<-ctx.Done()
		iter.Stop()
	}()
	for {
		msg, err := iter.Next()
		if err != nil {
			break // stopped: ctx ended, or the consumer was deleted
		}
		queues[worker(msg.Subject(), len(queues))] <- msg
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("eventlog: consumer %s stopped", cfg.Durable)
}

// worker picks the worker of an issue from its subject whistle.<issue>.<kind>.
func worker(subject string, n int) int {
	issue := subject
	if parts := strings.SplitN(subject, ".", 3); len(parts) == 3 {
		issue = parts[1]
	}
	f := fnv.New32a()
	_, _ = f.Write([]byte(issue))
	return int(f.Sum32() % uint32(n))
}

func (l *Log) handle(ctx context.Context, cfg ConsumerConfig, h Handler, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		l.deadLetter(ctx, cfg, msg, fmt.Errorf("no metadata: %w", err))
		return
	}
	ev, err := decode(msg.Data())
	if err != nil {
		l.deadLetter(ctx, cfg, msg, err)
		return
	}
	kind := Kind(ev)
	ctx, span := tracer.Start(otelx.ExtractNATS(ctx, msg.Headers()), "eventlog.Log.Consume",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("whistle.consumer", cfg.Durable), attribute.String("whistle.event", kind),
			attribute.String("whistle.issue", ev.GetIssueId()), attribute.Int64("whistle.seq", int64(meta.Sequence.Stream))))
	defer span.End()
	rec := Record{Seq: meta.Sequence.Stream, Time: meta.Timestamp, Event: ev, Header: msg.Headers()}
	err = h(ctx, rec)
	outcome := "applied"
	switch {
	case err == nil:
		if ackErr := msg.Ack(); ackErr != nil {
			cfg.Logger.Warn("ack failed; the message will be delivered again", "consumer", cfg.Durable, "seq", rec.Seq, "err", ackErr)
		}
	case errors.Is(err, ErrPermanent):
		outcome = "dead"
		span.SetStatus(codes.Error, err.Error())
		l.deadLetter(ctx, cfg, msg, err)
	default:
		outcome = "retried"
		span.SetStatus(codes.Error, err.Error())
		delay := retryDelay(meta.NumDelivered)
		cfg.Logger.Warn("event failed; retrying", "consumer", cfg.Durable, "issue", ev.GetIssueId(), "seq", rec.Seq,
			"delivery", meta.NumDelivered, "delay", delay, "err", err)
		_ = msg.NakWithDelay(delay)
	}
	eventsProcessed.Add(ctx, 1, metric.WithAttributes(attribute.String("consumer", cfg.Durable),
		attribute.String("event", kind), attribute.String("outcome", outcome)))
}

// retryDelay grows with each delivery: 100ms, 200ms, 400ms ... up to MaxRetryDelay.
func retryDelay(delivered uint64) time.Duration {
	d := 100 * time.Millisecond
	for i := uint64(1); i < delivered && d < MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, MaxRetryDelay)
}

// deadLetter terminates msg and copies it, with the reason, to whistle-dead.<consumer>.
func (l *Log) deadLetter(ctx context.Context, cfg ConsumerConfig, msg jetstream.Msg, reason error) {
	cfg.Logger.Error("event dead-lettered", "consumer", cfg.Durable, "subject", msg.Subject(), "reason", reason)
	dead := nats.NewMsg(DeadLetterRoot + "." + cfg.Durable)
	dead.Data = msg.Data()
	for k, v := range msg.Headers() {
		if !strings.HasPrefix(k, "Nats-") {
			dead.Header[k] = v
		}
	}
	dead.Header.Set(HeaderDeadReason, reason.Error())
	dead.Header.Set("Whistle-Dead-Subject", msg.Subject())
	if _, err := l.js.PublishMsg(ctx, dead); err != nil {
		// Keep the message: without its dead letter it would be lost. It comes back after a delay.
		_ = msg.NakWithDelay(MaxRetryDelay)
		return
	}
	_ = msg.Term()
}

// DeleteConsumer removes a durable consumer so that the next Consume starts from the first event:
// part of rebuilding a service's state from the stream.
func (l *Log) DeleteConsumer(ctx context.Context, durable string) error {
	err := l.stream.DeleteConsumer(ctx, durable)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("eventlog: delete consumer %s: %w", durable, err)
	}
	return nil
}

// Pending returns how many events of the stream the durable consumer has not yet acknowledged;
// 0 means caught up. Consumers take every event, so this is the distance from the stream's last
// sequence to the consumer's acknowledgement floor, which, unlike a count kept by the consumer,
// cannot read 0 before a new consumer has begun.
func (l *Log) Pending(ctx context.Context, durable string) (uint64, error) {
	applied, err := l.Applied(ctx, durable)
	if err != nil {
		return 0, err
	}
	head, err := l.Head(ctx)
	if err != nil {
		return 0, err
	}
	return head - min(applied, head), nil
}
