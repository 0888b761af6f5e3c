package eventlog

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
)

// Consumer defaults; each can be set in ConsumerConfig.
const (
	DefaultWorkers       = 8
	DefaultMaxAckPending = 1024
	// MaxRetryDelay caps the growing delay before a transient failure is tried again.
	MaxRetryDelay = 10 * time.Second
	// DeliveryLimit is how often JetStream may deliver one message before the consumer gives up
	// on it: a message that keeps coming back without an outcome (its handler crashed the process
	// or hung past the ack wait each time) is quarantined on its last delivery.
	DeliveryLimit = 8
)

// DefaultBackOff is how long JetStream waits for an outcome before delivering a message again,
// growing with each delivery (the first entry is the ack wait of the first delivery). A handler
// that is retrying a transient failure reports progress, so only a crash or a hang waits these out.
var DefaultBackOff = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}

// backOff is the redelivery back-off of cfg: DefaultBackOff, or the same shape from its AckWait.
func (cfg ConsumerConfig) backOff() []time.Duration {
	if cfg.AckWait <= 0 {
		return DefaultBackOff
	}
	out := make([]time.Duration, len(DefaultBackOff))
	for i, d := range DefaultBackOff {
		out[i] = cfg.AckWait * (d / DefaultBackOff[0]) // each entry is a whole multiple of the first
	}
	return out
}

// ErrPermanent marks a reaction's failure that no retry can mend: the issue is quarantined.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that the consumer gives up on the message at once.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Handler is a reaction to one record, run once the projection has applied it. Returning nil
// acknowledges the record; an error wrapping ErrPermanent quarantines its issue; ErrQuarantined
// (the issue was quarantined meanwhile) is nothing to do; any other error is tried again.
type Handler func(ctx context.Context, rec Record) error

// ConsumerConfig names a durable consumer and sizes its work.
type ConsumerConfig struct {
	// Durable is the consumer's name, one per service; replicas of a service share it. Empty
	// means the projection's name.
	Durable string
	// Workers is how many issues are processed at once; one issue's events always go to the same
	// worker, so they are handled in the order they arrive.
	Workers       int
	MaxAckPending int
	// AckWait is how long JetStream waits for a first delivery's outcome before it delivers the
	// message again; later deliveries wait longer. Zero means the first of DefaultBackOff.
	AckWait time.Duration
	Logger  *slog.Logger
}

var (
	meter            = otel.Meter("github.com/whistle-dispatch/whistle/pkg/eventlog")
	eventsProcessed  metric.Int64Counter
	quarantinedCount metric.Int64Counter
	outOfOrderCount  metric.Int64Counter
	outOfOrder       sync.Map // projection name -> *atomic.Uint64
	consumerLagGauge metric.Int64ObservableGauge
	lagSources       sync.Map // durable name -> jetstream.Consumer
	failing          sync.Map // failingKey -> error: the transient failures consumers are retrying
)

func init() {
	eventsProcessed, _ = meter.Int64Counter("whistle.events.processed",
		metric.WithDescription("Whistle events handled by a service's consumer, by outcome: applied, quarantined."))
	quarantinedCount, _ = meter.Int64Counter("whistle.events.quarantined",
		metric.WithDescription("Events a service's projection could never apply; each quarantines its issue."))
	outOfOrderCount, _ = meter.Int64Counter("whistle.events.out_of_order",
		metric.WithDescription("Events a projection received ahead of an earlier event of their issue, and applied after reading the missing ones."))
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

// countOutOfOrder counts an event the projection received ahead of an earlier one of its issue.
func countOutOfOrder(ctx context.Context, projection string) {
	n, _ := outOfOrder.LoadOrStore(projection, new(atomic.Uint64))
	n.(*atomic.Uint64).Add(1)
	outOfOrderCount.Add(ctx, 1, metric.WithAttributes(attribute.String("consumer", projection)))
}

// OutOfOrder returns how many events the projection's consumers in this process received ahead of
// an earlier event of their issue (replicas share a consumer, so each takes what comes next).
func OutOfOrder(projection string) uint64 {
	if n, ok := outOfOrder.Load(projection); ok {
		return n.(*atomic.Uint64).Load()
	}
	return 0
}

// Failing returns the transient failure the durable consumer is retrying right now, or nil. A
// process is not ready while one of its consumers fails: it serves reads from a state that no
// longer follows the stream.
func Failing(durable string) error {
	var found error
	failing.Range(func(k, v any) bool {
		if key := k.(failingKey); key.durable == durable {
			found = fmt.Errorf("consumer %s is retrying event %d: %w", durable, key.seq, v.(error))
			return false
		}
		return true
	})
	return found
}

// failingKey names one message a consumer is retrying.
type failingKey struct {
	durable string
	seq     uint64
}

// withDefaults fills in what cfg leaves at zero.
func (cfg ConsumerConfig) withDefaults(p Projection) ConsumerConfig {
	if cfg.Durable == "" && p != nil {
		cfg.Durable = p.Name()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = DefaultMaxAckPending
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
	_, err := l.ensureConsumer(ctx, cfg.withDefaults(nil))
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
		MaxDeliver:    DeliveryLimit,
		BackOff:       cfg.backOff(),
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: consumer %s: %w", cfg.Durable, err)
	}
	return cons, nil
}

// Consume runs a durable consumer over every whistle event until ctx ends: it applies each event to
// p, in issue order, and then runs react, if any. Each message meets an explicit fate: acknowledged
// once handled; tried again, with a growing delay and the consumer reported as failing, while a
// failure may pass (Redis or NATS unreachable); and when it can never apply (undecodable, breaking
// its issue's chain, refused as impossible, or delivered DeliveryLimit times without an outcome),
// its issue is quarantined and the message dead-lettered, so that no other issue waits for it.
func (l *Log) Consume(ctx context.Context, cfg ConsumerConfig, p Projection, react Handler) error {
	cfg = cfg.withDefaults(p)
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
				l.handle(ctx, cfg, p, react, msg)
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
	issue := IssueOf(subject)
	if issue == "" {
		issue = subject
	}
	f := fnv.New32a()
	_, _ = f.Write([]byte(issue))
	return int(f.Sum32() % uint32(n))
}

// handle gives one message its fate. A transient failure is retried here, in the worker, rather
// than handed back to JetStream: the issue's later events must wait for it anyway, and a delivery
// count spent on a Redis outage would quarantine an event that is perfectly good.
func (l *Log) handle(ctx context.Context, cfg ConsumerConfig, p Projection, react Handler, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term() // not a stream message: nothing to file it under
		return
	}
	s := newStoredMsg(meta.Sequence.Stream, msg.Subject(), meta.Timestamp, msg.Data(), msg.Headers())
	kind := "undecodable"
	if s.err == nil {
		kind = Kind(s.rec.Event)
	}
	ctx, span := tracer.Start(otelx.ExtractNATS(ctx, s.header), "eventlog.Log.Consume",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("whistle.consumer", cfg.Durable), attribute.String("whistle.event", kind),
			attribute.String("whistle.issue", IssueOf(s.subject)), attribute.Int64("whistle.seq", int64(s.seq))))
	defer span.End()

	key := failingKey{cfg.Durable, s.seq}
	defer failing.Delete(key)
	for attempt := uint64(1); ; attempt++ {
		err := l.process(ctx, p, react, s, meta.NumDelivered)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return // stopping: the message comes back to whoever consumes next
		}
		failing.Store(key, err)
		span.SetStatus(codes.Error, err.Error())
		delay := retryDelay(attempt)
		cfg.Logger.Warn("event failed; retrying", "consumer", cfg.Durable, "subject", s.subject, "seq", s.seq,
			"attempt", attempt, "delay", delay, "err", err)
		_ = msg.InProgress()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
	if err := msg.Ack(); err != nil {
		cfg.Logger.Warn("ack failed; the message will be delivered again", "consumer", cfg.Durable, "seq", s.seq, "err", err)
	}
	eventsProcessed.Add(ctx, 1, metric.WithAttributes(attribute.String("consumer", cfg.Durable),
		attribute.String("event", kind), attribute.String("outcome", "applied")))
}

// process applies one delivered message and runs the reaction; it returns only failures that may
// pass, having quarantined what never can.
func (l *Log) process(ctx context.Context, p Projection, react Handler, s storedMsg, deliveries uint64) error {
	issueID := IssueOf(s.subject)
	switch {
	case deliveries >= DeliveryLimit:
		if s.err == nil && issueID != "" {
			// Take what comes before it first, so that the mark lands in the issue's order.
			if _, err := l.CatchupTo(ctx, p, issueID, s.seq-1); err != nil {
				return err
			}
		}
		return l.Quarantine(ctx, p, s.dead(deliveries, fmt.Errorf("delivered %d times without an outcome", deliveries)))
	case s.err != nil:
		if issueID != "" {
			if _, err := l.CatchupTo(ctx, p, issueID, s.seq-1); err != nil {
				return err
			}
		}
		return l.Quarantine(ctx, p, s.dead(deliveries, s.err))
	}
	if err := l.project(ctx, p, s.rec, deliveries); err != nil {
		return err
	}
	if react == nil {
		return nil
	}
	err := react(ctx, s.rec)
	switch {
	case errors.Is(err, ErrQuarantined):
		return nil
	case errors.Is(err, ErrPermanent):
		d := s.dead(deliveries, err)
		d.Applied = true
		return l.Quarantine(ctx, p, d)
	}
	return err
}

// retryDelay grows with each attempt: 100ms, 200ms, 400ms ... up to MaxRetryDelay.
func retryDelay(attempt uint64) time.Duration {
	d := 100 * time.Millisecond
	for i := uint64(1); i < attempt && d < MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, MaxRetryDelay)
}

// Dead-letter headers: where the message was stored and why it could never apply.
const (
	HeaderDeadReason     = "Whistle-Dead-Reason"
	HeaderDeadSubject    = "Whistle-Dead-Subject"
	HeaderDeadSeq        = "Whistle-Dead-Seq"
	HeaderDeadStoredAt   = "Whistle-Dead-Stored-At"
	HeaderDeadDeliveries = "Whistle-Dead-Deliveries"
	HeaderDeadMsgID      = "Whistle-Dead-Msg-Id"
)

// DeadLetter is a message a projection could never apply, as filed in the dead-letter stream.
type DeadLetter struct {
	// Consumer is the service whose projection could not apply it.
	Consumer string
	// IssueID is the issue its subject names; empty when the subject names none.
	IssueID  string
	Subject  string
	Seq      uint64
	StoredAt time.Time
	// Deliveries is how often the consumer had delivered it; 0 when it was read from the stream.
	Deliveries uint64
	Reason     string
	// Applied is set when the projection applied the event and a reaction to it can never succeed.
	Applied bool
	// MsgID is the original Nats-Msg-Id, if it had one.
	MsgID  string
	Data   []byte
	Header nats.Header
}

// deadOf describes a decoded record as a dead letter.
func deadOf(rec Record, deliveries uint64, reason error) DeadLetter {
	return DeadLetter{IssueID: rec.Event.GetIssueId(), Subject: Subject(rec.Event.GetIssueId(), Kind(rec.Event)),
		Seq: rec.Seq, StoredAt: rec.Time, Deliveries: deliveries, Reason: reason.Error(), Header: rec.Header}
}

// deadSubject is where a consumer files the dead letter of the event at seq: one subject per
// event, so that filing it is conditional on the subject being empty and happens once, whoever
// files it and however often (replicas, redeliveries, replays).
func deadSubject(consumer string, seq uint64) string {
	return DeadLetterRoot + "." + consumer + "." + strconv.FormatUint(seq, 10)
}

// Quarantine gives up on an event that p can never apply: it marks the event's issue quarantined in
// p (its later events are held, not applied, so no view shows a state built over a missing event,
// and nothing else waits) and files the event, with its original subject, sequence, delivery count
// and reason, in the dead-letter stream. Both steps are idempotent, so a crash between them is
// mended by the redelivery. An event whose subject names no issue is only filed.
func (l *Log) Quarantine(ctx context.Context, p Projection, d DeadLetter) error {
	d.Consumer = p.Name()
	if d.IssueID != "" {
		pos, err := p.Position(ctx, d.IssueID)
		if err != nil {
			return err
		}
		switch {
		case pos.LastSeq < d.Seq || (d.Applied && pos.Quarantine == nil):
			m := quarantine.Mark{Seq: d.Seq, Subject: d.Subject, Reason: d.Reason, StoredAt: d.StoredAt}
			if err := p.Quarantine(ctx, d.IssueID, m); err != nil {
				return err
			}
		case pos.Quarantine == nil || pos.Quarantine.Seq != d.Seq:
			return nil // applied or held before: nothing to give up on
		}
		// Marked before, by a replica or a delivery that did not live to file it: file it now.
	}
	if err := l.fileDead(ctx, d); err != nil {
		return err
	}
	quarantinedCount.Add(ctx, 1, metric.WithAttributes(attribute.String("consumer", d.Consumer)))
	return nil
}

// fileDead appends d to the dead-letter stream unless it is there already.
func (l *Log) fileDead(ctx context.Context, d DeadLetter) error {
	msg := nats.NewMsg(deadSubject(d.Consumer, d.Seq))
	msg.Data = d.Data
	if msg.Data == nil && d.IssueID != "" {
		if raw, err := l.stream.GetMsg(ctx, d.Seq); err == nil {
			msg.Data = raw.Data
		}
	}
	for k, v := range d.Header {
		if !strings.HasPrefix(k, "Nats-") {
			msg.Header[k] = v
		}
	}
	if d.MsgID == "" {
		d.MsgID = d.Header.Get(jetstream.MsgIDHeader)
	}
	msg.Header.Set(jetstream.MsgIDHeader, d.Consumer+"."+strconv.FormatUint(d.Seq, 10))
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	msg.Header.Set(HeaderDeadReason, d.Reason)
	msg.Header.Set(HeaderDeadSubject, d.Subject)
	msg.Header.Set(HeaderDeadSeq, strconv.FormatUint(d.Seq, 10))
	msg.Header.Set(HeaderDeadDeliveries, strconv.FormatUint(d.Deliveries, 10))
	if !d.StoredAt.IsZero() {
		msg.Header.Set(HeaderDeadStoredAt, d.StoredAt.UTC().Format(time.RFC3339Nano))
	}
	if d.MsgID != "" {
		msg.Header.Set(HeaderDeadMsgID, d.MsgID)
	}
	_, err := l.js.PublishMsg(ctx, msg)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return nil // filed before
	}
	if err != nil {
		return fmt.Errorf("eventlog: file the dead letter of %d: %w", d.Seq, err)
	}
	slog.Default().Error("event quarantined", "consumer", d.Consumer, "issue", d.IssueID, "subject", d.Subject,
		"seq", d.Seq, "deliveries", d.Deliveries, "reason", d.Reason)
	return nil
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
