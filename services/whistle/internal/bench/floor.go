package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// floorStream is the stream of the floor run, apart from the system's own and deleted after it.
const floorStream = "BENCH_FLOOR"

// floorRoot replaces the stream's subject root in the floor's subjects; the tools user may
// publish under bench.
const floorRoot = "bench.floor"

// runFloor measures what the closed loop's events cost JetStream alone, with no service doing
// anything for them: the floor beneath the system's CPU per lifecycle. It reads the events the
// closed loop appended (stream sequences from+1 to to) and has measureFloor append them again,
// Concurrency issues at once, and consume them as every service would. The cost is read with pr,
// as the closed loop's is, and divided by the closed loop's lifecycles.
func runFloor(ctx context.Context, nc *nats.Conn, pr *probe, from, to uint64, lifecycles int, cfg Config, log io.Writer) (Cost, time.Duration, error) {
	if to <= from {
		return Cost{}, 0, fmt.Errorf("bench: floor: the closed loop appended no event")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return Cost{}, 0, fmt.Errorf("bench: floor: %w", err)
	}
	issues, err := readIssues(ctx, js, from, to)
	if err != nil {
		return Cost{}, 0, err
	}
	services := len(system.Names)
	fmt.Fprintf(log, "bench: floor: %d events of %d issues appended again to a stream of their own and consumed by %d consumers (%d services × %d partitions)\n",
		to-from, len(issues), services*eventlog.Partitions, services, eventlog.Partitions)
	fp := *pr // the floor's own stream gains its events
	fp.stream = floorStream
	var cost Cost
	wall, err := measureFloor(ctx, js, issues, false, services, oneAtATime(cfg.Concurrency), log, func(ctx context.Context) func(context.Context) {
		before := fp.read(ctx, false)
		return func(ctx context.Context) { cost = costOf(before, fp.read(ctx, true), lifecycles, fp.local) }
	})
	if err != nil {
		return Cost{}, 0, err
	}
	return cost, wall, nil
}

// measureFloor appends issues again to a stream of their own on the same NATS (floorStream,
// created for the run and deleted after it) as the services append: each issue's events in their
// order, each conditional on the issue's last sequence (the same two headers) and carrying its
// message id, as appending says (see oneAtATime and inPasses). They are consumed as the services consume
// them: one durable per service (services of them) per partition, with the same configuration
// (acknowledge all, pinned priority group, MaxAckPending messages asked for), each message
// decoded into a whistlev1.Event and each batch acknowledged once.
//
// With seeded, each issue already has an event in the stream before the run, as the storm's
// issues have theirs (raised and dispatched) before their breaches: every issue's first event is
// appended once, untimed, under the kind "seed", and the consumers begin after the seeds. An
// append's check of the issue's last sequence then loads a message that is there, as the storm's
// do, rather than finding the issue's subjects empty, which costs the server about half as much.
//
// meter measures the run: it is called once the stream and its consumers are there, just before
// the first append, and the function it returns is called once every event was consumed and its
// acknowledgement taken (as long as settleStream waits), while the stream is still there. The
// wall time returned is from the first append until every service's consumers have decoded
// every event.
func measureFloor(ctx context.Context, js jetstream.JetStream, issues [][]floorEvent, seeded bool, services int, appending floorAppends, log io.Writer,
	meter func(context.Context) func(context.Context)) (time.Duration, error) {
	var events int64
	for _, evs := range issues {
		events += int64(len(evs))
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        floorStream,
		Subjects:    []string{floorRoot + ".>"},
		Storage:     jetstream.FileStorage,
		Duplicates:  eventlog.DefaultDuplicateWindow,
		AllowDirect: true,
	})
	if err != nil {
		return 0, fmt.Errorf("bench: floor: create stream: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		js.DeleteStream(dctx, floorStream)
	}()

	fctx, cancel := context.WithTimeout(ctx, lifecycleTimeout+time.Duration(events)*time.Millisecond)
	defer cancel()
	lasts := make([]uint64, len(issues)) // each issue's last sequence before the run
	deliver := jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if seeded {
		head, err := seed(fctx, js, issues, lasts, appending)
		if err != nil {
			return 0, err
		}
		deliver = jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: head + 1}
	}
	consumed := make([]atomic.Int64, services)
	done := make(chan struct{}, services*eventlog.Partitions)
	var consumers sync.WaitGroup
	var failed atomic.Pointer[error]
	fail := func(err error) {
		if failed.CompareAndSwap(nil, &err) {
			cancel()
		}
	}
	for s := range services {
		for p := range eventlog.Partitions {
			cons, err := stream.CreateOrUpdateConsumer(fctx, jetstream.ConsumerConfig{
				Durable:        fmt.Sprintf("floor-%d-%d", s, p),
				AckPolicy:      jetstream.AckAllPolicy,
				DeliverPolicy:  deliver.DeliverPolicy,
				OptStartSeq:    deliver.OptStartSeq,
				FilterSubject:  fmt.Sprintf("%s.%d.>", floorRoot, p),
				MaxAckPending:  eventlog.DefaultMaxAckPending,
				PriorityPolicy: jetstream.PriorityPolicyPinned,
				PriorityGroups: []string{eventlog.OwnerGroup},
				PinnedTTL:      eventlog.OwnerTTL,
			})
			if err != nil {
				return 0, fmt.Errorf("bench: floor: consumer: %w", err)
			}
			consumers.Go(func() {
				if err := consumeFloor(fctx, cons, &consumed[s], events, done); err != nil && fctx.Err() == nil {
					fail(err)
				}
			})
		}
	}
	defer consumers.Wait()
	defer cancel()

	stop := meter(fctx)
	start := time.Now()
	if err := appending.run(fctx, js, issues, lasts); err != nil {
		fail(err)
	}
	for range services {
		select {
		case <-done:
		case <-fctx.Done():
		}
	}
	wall := time.Since(start)
	if err := failed.Load(); err != nil {
		return 0, *err
	}
	if err := fctx.Err(); err != nil {
		return 0, fmt.Errorf("bench: floor: %d of %d events consumed by every service: %w", minConsumed(consumed), events, err)
	}
	if err := settleStream(fctx, stream); err != nil {
		fmt.Fprintf(log, "bench: floor: measuring without waiting for the consumers' acknowledgements: %v\n", err)
	}
	stop(fctx)
	return wall, nil
}

// floorEvent is one event as read from the system's stream (of the closed loop, or a breach of
// the timer bench's storm): its issue and when the stream stored it, which the stages are timed
// by, and what the floor appends again (its subject under floorRoot, its message id and its
// bytes).
type floorEvent struct {
	issue       string
	stored      time.Time
	subject, id string
	data        []byte
}

// readIssues reads the events of stream sequences from+1 to to of the system's stream, grouped
// by issue in the order they were stored.
func readIssues(ctx context.Context, js jetstream.JetStream, from, to uint64) ([][]floorEvent, error) {
	stream, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		return nil, fmt.Errorf("bench: read the closed loop's events: %w", err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from + 1})
	if err != nil {
		return nil, fmt.Errorf("bench: read the closed loop's events: %w", err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("bench: read the closed loop's events: %w", err)
	}
	defer msgs.Stop()
	rctx, cancel := context.WithTimeout(ctx, lifecycleTimeout)
	defer cancel()
	defer context.AfterFunc(rctx, msgs.Stop)() // Next has no context of its own
	var events []floorEvent
	for {
		msg, err := msgs.Next()
		if err != nil {
			return nil, fmt.Errorf("bench: read the closed loop's events: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("bench: read the closed loop's events: %w", err)
		}
		ev, err := floorEventOf(msg, meta)
		if err != nil {
			return nil, fmt.Errorf("bench: read the closed loop's events: %w", err)
		}
		events = append(events, ev)
		if meta.Sequence.Stream >= to {
			return byIssue(events), nil
		}
	}
}

// floorEventOf is msg, an event read from the system's stream, as the floor appends it again.
func floorEventOf(msg jetstream.Msg, meta *jetstream.MsgMetadata) (floorEvent, error) {
	subject, ok := strings.CutPrefix(msg.Subject(), eventlog.SubjectRoot+".")
	if !ok {
		return floorEvent{}, fmt.Errorf("%s is not an event's subject", msg.Subject())
	}
	return floorEvent{issue: eventlog.IssueOf(msg.Subject()), stored: meta.Timestamp, subject: floorRoot + "." + subject,
		id: msg.Headers().Get(jetstream.MsgIDHeader), data: msg.Data()}, nil
}

// byIssue groups events by issue, the issues in the order of their first event and each
// issue's events in theirs.
func byIssue(events []floorEvent) [][]floorEvent {
	index := map[string]int{}
	var issues [][]floorEvent
	for _, ev := range events {
		i, seen := index[ev.issue]
		if !seen {
			i = len(issues)
			index[ev.issue] = i
			issues = append(issues, nil)
		}
		issues[i] = append(issues[i], ev)
	}
	return issues
}

// seed appends each issue's first event once more under the kind "seed" (with a message id of its
// own), conditional on the issue having none, as appending says, and sets each issue's sequence
// in lasts. It returns the last sequence it appended.
func seed(ctx context.Context, js jetstream.JetStream, issues [][]floorEvent, lasts []uint64, appending floorAppends) (uint64, error) {
	seeds := make([][]floorEvent, len(issues))
	for i, evs := range issues {
		ev := evs[0]
		ev.subject, ev.id = ev.subject[:strings.LastIndexByte(ev.subject, '.')+1]+"seed", ev.id+"-seed"
		seeds[i] = []floorEvent{ev}
	}
	if err := appending.run(ctx, js, seeds, lasts); err != nil {
		return 0, fmt.Errorf("bench: floor: seed: %w", err)
	}
	return slices.Max(lasts), nil
}

// floorAppends says how the floor appends: one append at a time for each of parallel issues at
// once, waiting for each acknowledgement, as a command does (oneAtATime); or, when pass is set,
// pass issues' next events sent together and their acknowledgements awaited together, as the
// timer loop's passes append (inPasses, see eventlog.Log.DecideAll).
type floorAppends struct {
	parallel, pass int
}

// oneAtATime appends as commands do: parallel issues at once, each event's acknowledgement
// awaited before the issue's next event.
func oneAtATime(parallel int) floorAppends { return floorAppends{parallel: parallel} }

// inPasses appends as the timer loop does: pass issues at a time, their next events sent together
// and then their acknowledgements awaited together. (The loop sends a pass in escalation's fire
// groups, at once, each group's acknowledgements awaited apart: as many appends in flight.)
func inPasses(pass int) floorAppends { return floorAppends{pass: pass} }

// run appends every issue's events, each conditional on the issue's last sequence, which lasts
// holds before and after.
func (a floorAppends) run(ctx context.Context, js jetstream.JetStream, issues [][]floorEvent, lasts []uint64) error {
	if a.pass == 0 {
		return eachIssue(ctx, len(issues), a.parallel, func(i int) error {
			last, err := appendIssue(ctx, js, issues[i], lasts[i])
			lasts[i] = last
			return err
		})
	}
	for from := 0; from < len(issues); from += a.pass {
		to := min(from+a.pass, len(issues))
		for k := 0; ; k++ { // each issue's k-th event, for the pass's issues that have one
			var sent []int
			var acks []jetstream.PubAckFuture
			for i := from; i < to; i++ {
				if k >= len(issues[i]) {
					continue
				}
				ack, err := js.PublishMsgAsync(floorMessage(issues[i][k], lasts[i]))
				if err != nil {
					return fmt.Errorf("bench: floor: append %s: %w", issues[i][k].subject, err)
				}
				sent, acks = append(sent, i), append(acks, ack)
			}
			if len(sent) == 0 {
				break
			}
			for j, i := range sent {
				select {
				case ack := <-acks[j].Ok():
					lasts[i] = ack.Sequence
				case err := <-acks[j].Err():
					return fmt.Errorf("bench: floor: append %s: %w", issues[i][k].subject, err)
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
	return nil
}

// eachIssue calls do for each of n issues, parallel at once, until one fails or ctx ends, and
// returns the first failure.
func eachIssue(ctx context.Context, n, parallel int, do func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var workers sync.WaitGroup
	for range parallel {
		workers.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil && failed.Load() == nil; i = int(next.Add(1)) - 1 {
				if err := do(i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	workers.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// appendIssue appends one issue's events in their order, each conditional on the issue's last
// sequence, as eventlog.Log appends; last is the issue's sequence before the first. It returns
// the sequence of the last.
func appendIssue(ctx context.Context, js jetstream.JetStream, events []floorEvent, last uint64) (uint64, error) {
	for _, ev := range events {
		ack, err := js.PublishMsg(ctx, floorMessage(ev, last))
		if err != nil {
			return 0, fmt.Errorf("bench: floor: append %s: %w", ev.subject, err)
		}
		last = ack.Sequence
	}
	return last, nil
}

// floorMessage is the append of ev, conditional on its issue's last sequence being last, as
// eventlog.Log appends.
func floorMessage(ev floorEvent, last uint64) *nats.Msg {
	msg := nats.NewMsg(ev.subject)
	msg.Data = ev.data
	msg.Header.Set(jetstream.MsgIDHeader, ev.id)
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
	msg.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, issueSubjects(ev.subject))
	return msg
}

// issueSubjects is the wildcard of every floor subject of the issue a floor subject
// (bench.floor.<partition>.<case>.<kind>) belongs to.
func issueSubjects(subject string) string {
	return subject[:strings.LastIndexByte(subject, '.')] + ".>"
}

// consumeFloor takes a partition's messages as a service's consumer does: what is waiting
// (eventlog.WaitingBatch), each decoded, the batch acknowledged once by its last message. It
// counts what it decoded in consumed (shared by one service's partitions), says on done once
// that reaches want, and returns when ctx ends.
func consumeFloor(ctx context.Context, cons jetstream.Consumer, consumed *atomic.Int64, want int64, done chan<- struct{}) error {
	iter, err := cons.Messages(jetstream.PullMaxMessages(eventlog.DefaultMaxAckPending),
		jetstream.PullPriorityGroup(eventlog.OwnerGroup))
	if err != nil {
		return fmt.Errorf("bench: floor: %w", err)
	}
	defer context.AfterFunc(ctx, iter.Stop)()
	msgs := make(chan jetstream.Msg, eventlog.BatchLimit)
	go func() {
		defer close(msgs)
		for {
			msg, err := iter.Next()
			if err != nil {
				return
			}
			select {
			case msgs <- msg:
			case <-ctx.Done():
				return
			}
		}
	}()
	for first := range msgs {
		batch := eventlog.WaitingBatch(first, msgs)
		for _, m := range batch {
			ev := &whistlev1.Event{}
			if err := proto.Unmarshal(m.Data(), ev); err != nil {
				return fmt.Errorf("bench: floor: decode %s: %w", m.Subject(), err)
			}
		}
		if err := batch[len(batch)-1].Ack(); err != nil {
			return fmt.Errorf("bench: floor: acknowledge: %w", err)
		}
		if consumed.Add(int64(len(batch))) == want {
			done <- struct{}{}
		}
	}
	return nil
}

// minConsumed is how many events the slowest service's consumers decoded.
func minConsumed(consumed []atomic.Int64) int64 {
	least := consumed[0].Load()
	for i := range consumed {
		least = min(least, consumed[i].Load())
	}
	return least
}

// settleStream waits until stream's consumers have every message acknowledged, polling every
// 100 ms for settleTimeout at most.
func settleStream(ctx context.Context, stream jetstream.Stream) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	for {
		busy, err := busyConsumers(ctx, stream)
		switch {
		case err != nil:
			return err
		case len(busy) == 0:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still behind after %s: %s", settleTimeout, strings.Join(busy, ", "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
