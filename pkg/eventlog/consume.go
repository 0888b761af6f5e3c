package eventlog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// DefaultWorkers is how many issues' reactions a partition's consumer runs at once.
	DefaultWorkers = 8
	// DefaultMaxAckPending bounds the messages a partition's consumer has taken and not yet
	// acknowledged.
	DefaultMaxAckPending = 1024
	// BatchLimit bounds the records a partition's consumer applies in one batch: what is waiting
	// when it is ready, up to this many.
	BatchLimit = 256
	// OwnerGroup is the priority group each partition's consumer pins to one client: the process
	// that owns the partition's issues for the service.
	OwnerGroup = "owner"
	// OwnerTTL is how long a partition's owner may go without asking for messages before the
	// server pins another client: how soon a replica takes over a dead one's partitions.
	OwnerTTL = 10 * time.Second
	// MaxRetryDelay caps the growing delay before a transient failure is tried again. A failure
	// that passes (a Redis master whose replica took over, a NATS node gone) is then noticed within
	// a second, and the commands waiting for the partition's owner to apply their events go on:
	// a longer cap would keep them waiting for seconds after the cluster healed.
	MaxRetryDelay = time.Second
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
	// ReactsTo names the kinds of event (see Kind) the reaction is for; the consumer runs it on no
	// other. Empty means every kind.
	ReactsTo []string
	Logger   *slog.Logger
}

// reacts reports whether the reaction is for records of kind.
func (cfg ConsumerConfig) reacts(react Handler, kind string) bool {
	return react != nil && (len(cfg.ReactsTo) == 0 || slices.Contains(cfg.ReactsTo, kind))
}

var (
	meter            = otel.Meter("github.com/whistle-dispatch/whistle/pkg/eventlog")
	eventsProcessed  metric.Int64Counter
	quarantinedCount metric.Int64Counter
	outOfOrderCount  metric.Int64Counter
	decideConflicts  metric.Int64Counter
	outOfOrder       sync.Map // projection name -> *atomic.Uint64
	consumerLagGauge metric.Int64ObservableGauge
	lagSources       sync.Map // durable name -> []jetstream.Consumer, one per partition
	failing          sync.Map // failingKey -> error: the transient failures consumers are retrying
)

func init() {
	eventsProcessed, _ = meter.Int64Counter("whistle.events.processed",
		metric.WithDescription("Whistle events handled by a service's consumer, by outcome: applied, quarantined."))
	quarantinedCount, _ = meter.Int64Counter("whistle.events.quarantined",
		metric.WithDescription("Events a service's projection could never apply; each quarantines its issue."))
	decideConflicts, _ = meter.Int64Counter("whistle.decide.conflicts",
		metric.WithDescription("Appends a service decided on a stale state of the issue and decided again: another writer had "+
			"stored an event of it first (outcome conflict), or the same event had been stored, a retry (outcome duplicate)."))
	outOfOrderCount, _ = meter.Int64Counter("whistle.events.out_of_order",
		metric.WithDescription("Events a projection received ahead of an earlier event of their issue, and applied after reading the missing ones."))
	consumerLagGauge, _ = meter.Int64ObservableGauge("whistle.consumer.lag",
		metric.WithDescription("Events in the stream that a service's consumer of one partition has not yet processed "+
			"(pending and awaiting acknowledgement), by consumer (the service) and partition. Every replica of a "+
			"service reports every partition, so take the max over replicas, not the sum."))
	_, _ = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		lagSources.Range(func(k, v any) bool {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			for part, cons := range v.([]jetstream.Consumer) {
				info, err := cons.Info(ctx)
				if err != nil {
					continue // an unknown lag is left out rather than reported as none
				}
				lag := int64(info.NumPending) + int64(info.NumAckPending)
				o.ObserveInt64(consumerLagGauge, lag, otelx.Attributes("consumer", k.(string), "partition", strconv.Itoa(part)))
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
// an earlier event of their issue and mended the gap from the stream. Each partition has one owner,
// so this stays 0 in normal operation; it counts what the safety net caught.
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

// EnsureConsumer creates the durable consumers that Consume with cfg will use, one per partition,
// where they do not exist yet. A process calls it for each service before it serves the API, so
// that what a service's API reads of its consumers (such as Applied) is there from the first call.
func (l *Log) EnsureConsumer(ctx context.Context, cfg ConsumerConfig) error {
	_, err := l.ensureConsumers(ctx, cfg.withDefaults(nil))
	return err
}

// PartitionDurable is the name of a service's durable consumer of partition p.
func PartitionDurable(durable string, p int) string { return durable + "-" + strconv.Itoa(p) }

// ensureConsumers creates or updates the durable consumer of each partition that cfg describes.
// Each pins one client at a time (JetStream's pinned priority group): that client's process owns
// the partition's issues for the service, and when it stops asking for messages for OwnerTTL the
// server pins another.
func (l *Log) ensureConsumers(ctx context.Context, cfg ConsumerConfig) ([]jetstream.Consumer, error) {
	out := make([]jetstream.Consumer, Partitions)
	for p := range Partitions {
		name := PartitionDurable(cfg.Durable, p)
		cons, err := l.ensureConsumer(ctx, jetstream.ConsumerConfig{
			Durable:        name,
			AckPolicy:      jetstream.AckAllPolicy,
			DeliverPolicy:  jetstream.DeliverAllPolicy,
			FilterSubject:  PartitionSubjects(p),
			MaxAckPending:  cfg.MaxAckPending,
			MaxDeliver:     DeliveryLimit,
			BackOff:        cfg.backOff(),
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PriorityGroups: []string{OwnerGroup},
			PinnedTTL:      OwnerTTL,
		})
		if err != nil {
			return nil, fmt.Errorf("eventlog: consumer %s: %w", name, err)
		}
		out[p] = cons
	}
	return out, nil
}

// ensureConsumer creates the durable consumer want, or updates the one that exists, which keeps
// where it started. A consumer made by an earlier Whistle that acknowledged each message
// (AckExplicit) cannot change its acknowledgement policy in place: it is made again, starting
// after the last message it had acknowledged with all before it (its ack floor); what it had
// acknowledged beyond that comes again, and its projection skips it.
func (l *Log) ensureConsumer(ctx context.Context, want jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if cur, err := l.stream.Consumer(ctx, want.Durable); err == nil {
		info := cur.CachedInfo()
		want.DeliverPolicy, want.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
		if info.Config.AckPolicy != want.AckPolicy {
			if err := l.stream.DeleteConsumer(ctx, want.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, err
			}
			want.DeliverPolicy, want.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	return l.stream.CreateOrUpdateConsumer(ctx, want)
}

// Consume runs a service's consumers, one per partition, until ctx ends: each applies its
// partition's events to p in batches, in issue order, and then runs react, if any, on each. Each
// message meets an explicit fate: acknowledged once handled; tried again, with a growing delay and
// the consumer reported as failing, while a failure may pass (Redis or NATS unreachable); and when
// it can never apply (undecodable, breaking its issue's chain, refused as impossible, or delivered
// DeliveryLimit times without an outcome), its issue is quarantined and the message dead-lettered,
// so that no other issue waits for it.
//
// Replicas of a service each run Consume; each partition's server pins one of them, so an issue
// has one writer at a time, and a replica that dies hands its partitions to another after OwnerTTL.
func (l *Log) Consume(ctx context.Context, cfg ConsumerConfig, p Projection, react Handler) error {
	cfg = cfg.withDefaults(p)
	conss, err := l.ensureConsumers(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it began
		}
		return err
	}
	lagSources.Store(cfg.Durable, conss)
	defer lagSources.Delete(cfg.Durable)

	sh, err := l.joinShare(ctx, p.Name())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(conss))
	var wg sync.WaitGroup
	wg.Go(func() { sh.run(ctx) })
	for part, cons := range conss {
		wg.Go(func() {
			err := l.consumePartition(ctx, cfg, part, cons, p, react, sh)
			if err != nil {
				cancel() // one partition stopped unasked: stop them all and say why
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	var first error
	for err := range errs {
		first = cmp.Or(first, err)
	}
	return first
}

// consumePartition takes one partition's messages while this replica may (see share): in batches,
// each what is waiting when the last batch is done, up to BatchLimit. Having handed the partition
// on, it leaves it to the others for MemberTTL; but whenever the partition is orphaned (nobody
// holds it and events wait), it asks for it whatever its share.
func (l *Log) consumePartition(ctx context.Context, cfg ConsumerConfig, part int, cons jetstream.Consumer, p Projection, react Handler, sh *share) error {
	var handedOn time.Time
	for ctx.Err() == nil {
		mayPull := sh.mayPull(part) && time.Since(handedOn) >= MemberTTL
		if mayPull || l.orphaned(ctx, cons) {
			released, err := l.pullPartition(ctx, cfg, part, cons, p, react, sh)
			if err != nil {
				return err
			}
			if released {
				handedOn = time.Now()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(shareTick):
		}
	}
	return nil
}

// orphaned reports whether nobody holds the partition while events of it wait: no client is
// pinned, and the consumer has messages to send or sent ones unacknowledged. A partition is
// handed on only to a replica that asks for it, so this is rare, but it happens: the replica it
// was handed to died, or a replica that lost its pin (a consumer leader that died takes its pins
// with it) still counts the partition as its own. A replica at its share would otherwise never
// ask for it again, and the partition's events would wait for a change of members.
func (l *Log) orphaned(ctx context.Context, cons jetstream.Consumer) bool {
	info, err := cons.Info(ctx)
	if err != nil || (info.NumPending == 0 && info.NumAckPending == 0) {
		return false // unknown, or nothing waits: not worth a pull
	}
	for _, g := range info.PriorityGroups {
		if g.Group == OwnerGroup && g.PinnedClientID != "" {
			return false
		}
	}
	return true
}

// pullPartition asks for the partition's messages and applies them until ctx ends or the replica
// holds more than its share, when it hands the partition on (released). Whatever it took before it
// stopped asking, it applies first, so that nothing waits for a redelivery.
func (l *Log) pullPartition(ctx context.Context, cfg ConsumerConfig, part int, cons jetstream.Consumer, p Projection, react Handler, sh *share) (released bool, _ error) {
	name := PartitionDurable(cfg.Durable, part)
	// The iterator's buffer holds as many messages as the server may send unacknowledged
	// (MaxAckPending): a full one would drop what arrives (a slow consumer), which then waits out
	// its ack wait to come again.
	iter, err := cons.Messages(jetstream.PullMaxMessages(cfg.MaxAckPending), jetstream.PullPriorityGroup(OwnerGroup),
		jetstream.PullExpiry(pullExpiry))
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("eventlog: consume %s: %w", name, err)
	}
	defer context.AfterFunc(ctx, iter.Stop)()
	owned := &sh.owned[part]
	inProcess := &l.own.partitions(p.Name())[part] // what Decide asks: does this process own it
	releasing := false
	defer func() {
		inProcess.Store(false)
		owned.Store(false)
		if ctx.Err() != nil || releasing {
			// Stopping on purpose: hand the partition on now rather than after OwnerTTL. The
			// server may still hold a request of this replica (it cannot tell a stopped one) and
			// pin the partition to it, so the unpin waits for those to expire; it may unpin
			// another replica, which its next request pins again.
			time.Sleep(pullExpiry)
			unpinCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = l.stream.UnpinConsumer(unpinCtx, name, OwnerGroup)
		}
	}()
	// The messages taken from the iterator wait here for their batch, as many as the server may
	// send, so that all of them are in rcv (kept in progress while a batch is slow), none left in
	// the iterator's own buffer.
	msgs := make(chan jetstream.Msg, cfg.MaxAckPending)
	rcv := &received{}
	go func() {
		defer close(msgs)
		for {
			msg, err := iter.Next()
			switch {
			case errors.Is(err, jetstream.ErrMsgIteratorClosed), errors.Is(err, jetstream.ErrConsumerDeleted),
				errors.Is(err, jetstream.ErrConsumerNotFound):
				return // stopped or drained: ctx ended, the share shrank, or the consumer was deleted
			case err != nil:
				// A missed heartbeat or a server that restarts: the iterator asks again by itself.
				cfg.Logger.Debug("consumer pull interrupted; asking again", "consumer", name, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			owned.Store(true) // the server sends a partition's messages to its pinned owner only
			inProcess.Store(true)
			rcv.push(msg)
			select {
			case msgs <- msg:
			case <-ctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(shareTick)
	defer tick.Stop()
	ownedAs := ""
	var delivered uint64 // the consumer's delivery sequence of the last message received
	for {
		var msg jetstream.Msg
		select {
		case <-tick.C:
			if !releasing && sh.shouldRelease(part) {
				releasing = true
				iter.Drain() // take what was sent, ask for nothing more
			}
			continue
		case m, ok := <-msgs:
			if !ok {
				switch {
				case ctx.Err() != nil:
					return false, nil
				case releasing:
					return true, nil
				}
				return false, fmt.Errorf("eventlog: consumer %s stopped", name)
			}
			msg = m
		}
		batch := WaitingBatch(msg, msgs)
		// Each pinning of the partition to this process is an ownership of its own, named by the
		// server's pin id: what the projection kept from an earlier one may be stale.
		pinned := false
		for _, m := range batch {
			if pin := m.Headers().Get(pinHeader); pin != ownedAs {
				ownedAs, pinned = pin, true
				if c, ok := p.(PartitionCache); ok {
					c.Forget(part)
				}
			}
		}
		// A delivery that never arrived (sent by a consumer leader that died, say) leaves a gap in
		// the consumer's delivery sequence; the acknowledgement of this batch would cover it.
		gap := false
		for _, m := range batch {
			if meta, err := m.Metadata(); err == nil {
				gap = gap || (delivered != 0 && meta.Sequence.Consumer > delivered+1)
				delivered = max(delivered, meta.Sequence.Consumer)
			}
		}
		stopKeeping := keepInProgress(rcv, cfg.backOff()[0]/3)
		if (pinned || gap) && !l.takeOver(ctx, cfg, part, cons, p, react, batch) {
			stopKeeping()
			return false, nil // stopping: what it took comes again to whoever consumes next
		}
		l.handleBatch(ctx, cfg, p, react, batch)
		stopKeeping()
		rcv.done(len(batch))
	}
}

// takeOver handles, when a pinning of the partition to this process begins, the messages an
// earlier owner took and never acknowledged: they lie between the consumer's acknowledgement floor
// and the last message of the batch, outside the batch (the server sends a message whose ack wait
// ran out ahead of new ones, so a batch may begin with one redelivered and leave out others the
// earlier owner took after it). It does the same when a delivery to this owner never
// arrived (a gap in the consumer's delivery sequence: the consumer's leader died with it in flight). JetStream sends them again only after their ack wait,
// and the consumers acknowledge with AckAll, so this owner's first acknowledgement would cover them
// unhandled: an owner killed with a batch in hand would leave its events unapplied and its
// reactions never run. They are read from the stream and applied (and reacted to) one by one,
// the way a redelivery is; what the earlier owner did apply is skipped as applied, and an event
// that comes after one of the batch's own takes that one from the stream first (its reaction then
// runs with the batch). A failure is tried again in place. It returns false when ctx ended first.
func (l *Log) takeOver(ctx context.Context, cfg ConsumerConfig, part int, cons jetstream.Consumer, p Projection, react Handler, batch []jetstream.Msg) bool {
	var last uint64
	inBatch := make(map[uint64]bool, len(batch))
	for _, m := range batch {
		if meta, err := m.Metadata(); err == nil {
			last = max(last, meta.Sequence.Stream)
			inBatch[meta.Sequence.Stream] = true
		}
	}
	for attempt := uint64(1); ; attempt++ {
		err := l.takeOverOnce(ctx, cfg, part, cons, p, react, last, inBatch)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		delay := retryDelay(attempt)
		cfg.Logger.Warn("taking over a partition failed; retrying", "consumer", PartitionDurable(cfg.Durable, part),
			"attempt", attempt, "delay", delay, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// takeOverOnce is one attempt of takeOver: the partition's messages above the acknowledgement
// floor and below last that are not in the batch, each processed as a message read from the
// stream.
func (l *Log) takeOverOnce(ctx context.Context, cfg ConsumerConfig, part int, cons jetstream.Consumer, p Projection, react Handler, last uint64, inBatch map[uint64]bool) error {
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	for seq := info.AckFloor.Stream + 1; seq < last; {
		raw, err := l.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(PartitionSubjects(part)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if raw.Sequence >= last {
			return nil
		}
		if inBatch[raw.Sequence] {
			seq = raw.Sequence + 1
			continue
		}
		s := storedOf(raw)
		r := react
		if s.err == nil && !cfg.reacts(react, Kind(s.rec.Event)) {
			r = nil
		}
		if err := l.process(OwnerContext(withReaction(ctx, p.Name())), p, r, s, 0); err != nil {
			return err
		}
		if s.err == nil {
			l.own.applied(p.Name(), s.rec)
		}
		seq = raw.Sequence + 1
	}
	return nil
}

// WaitingBatch is the batch a partition's consumer handles next: first, and the messages already
// waiting behind it in msgs, up to BatchLimit in all. It never waits for more.
func WaitingBatch(first jetstream.Msg, msgs <-chan jetstream.Msg) []jetstream.Msg {
	batch := []jetstream.Msg{first}
	for len(batch) < BatchLimit {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

// pullExpiry is how long the server keeps a partition consumer's request for messages: short,
// since a replica that stopped asking leaves its requests behind, and the server may pin the
// partition to one of them.
const pullExpiry = 2 * time.Second

// pinHeader carries, on each message of a pinned consumer, the id of the pinning it was sent under.
const pinHeader = "Nats-Pin-Id"

// delivery is one message of a batch, decoded, with what has been done with it.
type delivery struct {
	msg        jetstream.Msg
	s          storedMsg
	deliveries uint64
	// applied is set once the projection applied the record in the batch.
	applied bool
}

// handleBatch gives a batch of one partition's messages their fates. The records that can apply go
// to the projection together (one ApplyBatch, when p batches); what that leaves (records behind a
// missing event, undecodable ones, last deliveries, or the whole batch when it failed) goes the
// one-by-one way, which reads the stream to mend a gap and quarantines what can never apply. Then
// each issue's reactions run in order, issues side by side, and once every message's fate is
// sealed one acknowledgement covers the batch.
func (l *Log) handleBatch(ctx context.Context, cfg ConsumerConfig, p Projection, react Handler, msgs []jetstream.Msg) {
	batch := make([]*delivery, 0, len(msgs))
	var recs []Record
	var fresh []*delivery // the deliveries of recs
	for _, msg := range msgs {
		meta, err := msg.Metadata()
		if err != nil {
			_ = msg.Term() // not a stream message: nothing to file it under
			continue
		}
		d := &delivery{msg: msg, deliveries: meta.NumDelivered,
			s: newStoredMsg(meta.Sequence.Stream, msg.Subject(), meta.Timestamp, msg.Data(), msg.Headers())}
		batch = append(batch, d)
		if d.s.err == nil && d.deliveries < DeliveryLimit {
			recs = append(recs, d.s.rec)
			fresh = append(fresh, d)
		}
	}
	if bp, ok := p.(BatchProjection); ok && len(recs) > 0 {
		errs, err := bp.ApplyBatch(WithHistory(OwnerContext(ctx), l), recs)
		if err == nil {
			var applied []Record
			for i, d := range fresh {
				d.applied = errs[i] == nil // the rest go one by one, which mends a gap from the stream
				if d.applied {
					applied = append(applied, d.s.rec)
				}
			}
			l.own.applied(p.Name(), applied...)
		}
	}
	var pending []*delivery
	for _, d := range batch {
		if d.applied && !cfg.reacts(react, Kind(d.s.rec.Event)) {
			l.sealed(ctx, cfg, d, Kind(d.s.rec.Event)) // applied, with no reaction to run
		} else {
			pending = append(pending, d)
		}
	}
	if !l.settleAll(ctx, cfg, p, react, pending) || len(batch) == 0 {
		return // stopping: the rest come back to whoever consumes next
	}
	// Every message of the batch has met its fate: one acknowledgement (AckAll) of the last stream
	// sequence acknowledges them all. A partition's batches are handled one after another, and
	// the server sends new messages in stream order, so none it sent since lies below it.
	last := batch[0]
	for _, d := range batch[1:] {
		if d.s.seq > last.s.seq {
			last = d
		}
	}
	if err := last.msg.Ack(); err != nil {
		cfg.Logger.Warn("ack failed; the batch will be delivered again", "consumer", cfg.Durable, "seq", last.s.seq, "err", err)
	}
}

// received holds, in order, the messages a partition's consumer has taken from its iterator and
// not yet handled to the end of their batch.
type received struct {
	mu   sync.Mutex
	msgs []jetstream.Msg
}

// push adds a message taken from the iterator.
func (r *received) push(m jetstream.Msg) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// done drops the n oldest messages, the batch just handled (batches are taken in order).
func (r *received) done(n int) {
	r.mu.Lock()
	r.msgs = r.msgs[n:]
	r.mu.Unlock()
}

// all returns the messages held now.
func (r *received) all() []jetstream.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// keepInProgress tells JetStream every interval, until the returned stop is called, that every
// message the consumer holds (the batch being handled and those waiting for theirs) is still being
// worked on. Nothing of a batch is acknowledged until all of it has met its fate, and a failure that
// may pass (Redis unreachable) is retried in place for as long as it lasts: without this, the
// messages waiting behind it would outlive their ack wait, be delivered again and again, and reach
// DeliveryLimit, which quarantines a perfectly good event. A batch handled within the interval sends
// nothing.
func keepInProgress(held *received, interval time.Duration) (stop func()) {
	var mu sync.Mutex
	stopped := false
	mu.Lock()
	defer mu.Unlock()
	var timer *time.Timer
	timer = time.AfterFunc(interval, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		for _, m := range held.all() {
			_ = m.InProgress()
		}
		timer.Reset(interval)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		timer.Stop()
	}
}

// settleAll seals the fates of a batch's messages that the batch did not apply, or that have a
// reaction to run: each issue's messages in stream order, issues side by side, a few at a time.
// It returns false when ctx ended first.
func (l *Log) settleAll(ctx context.Context, cfg ConsumerConfig, p Projection, react Handler, batch []*delivery) bool {
	byIssue := map[string][]*delivery{}
	var order []string
	for _, d := range batch {
		id := IssueOf(d.s.subject)
		if _, ok := byIssue[id]; !ok {
			order = append(order, id)
		}
		byIssue[id] = append(byIssue[id], d)
	}
	sem := make(chan struct{}, cfg.Workers)
	var wg sync.WaitGroup
	var stopped atomic.Bool
	for _, id := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, d := range byIssue[id] {
				if !l.settle(ctx, cfg, p, react, d) {
					stopped.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return !stopped.Load()
}

// settle seals one message's fate, retrying a transient failure in place: the
// issue's later events must wait for it anyway, and a delivery count spent on a Redis outage would
// quarantine an event that is perfectly good. It returns false when ctx ended first.
func (l *Log) settle(ctx context.Context, cfg ConsumerConfig, p Projection, react Handler, d *delivery) bool {
	s := d.s
	kind := "undecodable"
	if s.err == nil {
		kind = Kind(s.rec.Event)
	}
	if !cfg.reacts(react, kind) {
		react = nil
	}
	ctx, span := tracer.Start(otelx.ExtractNATS(ctx, s.header), "eventlog.Log.Consume",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("whistle.consumer", cfg.Durable), attribute.String("whistle.event", kind),
			attribute.String("whistle.issue", IssueOf(s.subject)), attribute.Int64("whistle.seq", int64(s.seq))))
	defer span.End()

	key := failingKey{cfg.Durable, s.seq}
	defer failing.Delete(key)
	// The reaction runs in the partition's owner: what it applies, it applies as the owner.
	ctx = OwnerContext(withReaction(ctx, p.Name()))
	for attempt := uint64(1); ; attempt++ {
		var err error
		if d.applied {
			err = l.react(ctx, p, react, s, d.deliveries)
		} else {
			err = l.process(ctx, p, react, s, d.deliveries)
			if err == nil && s.err == nil {
				l.own.applied(p.Name(), s.rec) // applied, held or quarantined: a waiter reads on
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		failing.Store(key, err)
		span.SetStatus(codes.Error, err.Error())
		delay := retryDelay(attempt)
		cfg.Logger.Warn("event failed; retrying", "consumer", cfg.Durable, "subject", s.subject, "seq", s.seq,
			"attempt", attempt, "delay", delay, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
	l.sealed(ctx, cfg, d, kind)
	return true
}

// sealed counts a message whose fate is sealed; its batch acknowledges it.
func (l *Log) sealed(ctx context.Context, cfg ConsumerConfig, d *delivery, kind string) {
	eventsProcessed.Add(ctx, 1, otelx.Attributes("consumer", cfg.Durable, "event", kind, "outcome", "applied"))
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
	return l.react(ctx, p, react, s, deliveries)
}

// react runs the reaction to a record the projection applied; it returns only failures that may
// pass, having quarantined the issue when the reaction can never succeed.
func (l *Log) react(ctx context.Context, p Projection, react Handler, s storedMsg, deliveries uint64) error {
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

// retryDelay grows with each attempt: 100ms, 200ms, 400ms, 800ms, then MaxRetryDelay.
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

// DeleteConsumer removes a service's durable consumers so that the next Consume starts from the
// first event: part of rebuilding a service's state from the stream.
func (l *Log) DeleteConsumer(ctx context.Context, durable string) error {
	for p := range Partitions {
		err := l.stream.DeleteConsumer(ctx, PartitionDurable(durable, p))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("eventlog: delete consumer %s: %w", PartitionDurable(durable, p), err)
		}
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
