package eventlog

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow delivers, in stream order, every event matching filter (for example IssueSubjects(id), or
// KindSubjects("breached")) whose sequence is above after, as it is stored, until ctx ends; then it
// closes the channel.
//
// It is what live views (Watch RPCs) build on: because it reads the stream rather than the core
// subject, an event arrives only once JetStream has stored it, so a projection caught up on
// receipt always includes it, and an append JetStream refused never shows. Follow from what the
// state to be shown already includes (Head, a projection's LastSeq, or a consumer's Applied), then
// read that state, and nothing falls between the two.
func (l *Log) Follow(ctx context.Context, filter string, after uint64) (<-chan Record, error) {
	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    after + 1,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: follow %s: %w", filter, err)
	}
	iter, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("eventlog: follow %s: %w", filter, err)
	}
	out := make(chan Record, 64)
	go func() {
		<-ctx.Done()
		iter.Stop()
	}()
	go func() {
		defer close(out)
		for {
			msg, err := iter.Next()
			if err != nil {
				return // stopped
			}
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			ev, err := decodeOn(msg.Subject(), msg.Data())
			if err != nil {
				continue // not a whistle event; consumers dead-letter it
			}
			select {
			case out <- Record{Seq: meta.Sequence.Stream, Time: meta.Timestamp, Event: ev, Header: msg.Headers()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Head returns the sequence of the stream's last event; following from it shows only what comes next.
func (l *Log) Head(ctx context.Context) (uint64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("eventlog: stream: %w", err)
	}
	return info.State.LastSeq, nil
}

// Applied returns how far a service's consumers have processed the stream: every event up to it
// has been processed, so a projection they feed includes them all. Each partition's consumer has
// processed its events up to its acknowledgement floor, and all of them when it has nothing
// pending, so the service's is the least of those, or the stream's head when none has anything
// pending.
func (l *Log) Applied(ctx context.Context, durable string) (uint64, error) {
	head, err := l.Head(ctx)
	if err != nil {
		return 0, err
	}
	applied := head
	for p := range Partitions {
		name := PartitionDurable(durable, p)
		cons, err := l.stream.Consumer(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("eventlog: consumer %s: %w", name, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("eventlog: consumer %s: %w", name, err)
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			applied = min(applied, info.AckFloor.Stream)
		}
	}
	return applied, nil
}
