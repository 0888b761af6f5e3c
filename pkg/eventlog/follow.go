package eventlog

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow delivers, in stream order, every event matching filter (for example IssueSubjects(id), or
// "whistle.*.breached") stored after the call began, until ctx ends; then it closes the channel.
//
// It is what live views (Watch RPCs) build on: because it reads the stream rather than the core
// subject, an event arrives only once JetStream has stored it, so a projection caught up on
// receipt always includes it, and an append JetStream refused never shows. Read the current state
// after calling Follow, and nothing falls between the two.
func (l *Log) Follow(ctx context.Context, filter string) (<-chan Record, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("eventlog: follow %s: %w", filter, err)
	}
	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    info.State.LastSeq + 1,
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
			ev, err := decode(msg.Data())
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
