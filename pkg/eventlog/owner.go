package eventlog

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// AwaitOwner bounds how long Decide waits for the issue's owner in another process to apply the
// event it appended, and how often it checks that an owner in this process still owns the issue,
// before it applies the event itself (the owner moved, or is stuck); either way the caller reads
// its own write.
const AwaitOwner = 2 * time.Second

// MaxAwaitOwner bounds how long Decide waits for an owner in this process that still owns the
// issue: one that lags behind a burst is left to catch up, since applying the event beside it
// only adds to its work.
const MaxAwaitOwner = 30 * time.Second

// owners is what this process knows of the partitions it owns: which ones its consumers are
// receiving messages for (a partition's server sends them to its pinned owner only), and who waits
// for an event to be applied there.
type owners struct {
	mu      sync.Mutex
	owned   map[string]*[Partitions]atomic.Bool // by projection
	waiters map[waitKey][]waiter
}

type waitKey struct{ projection, issue string }

// waiter is someone waiting for a record of an issue to be applied: the record at seq, or, when
// byPrev is set, the record that follows prev (an append conditional on prev can be registered for
// before it is stored, since the record that follows prev is then the append's, if it succeeds).
type waiter struct {
	seq, prev uint64
	byPrev    bool
	ch        chan Record
}

// meets reports whether rec is the awaited record, or passes it (the owner applied a later one).
func (w waiter) meets(rec Record) (match, past bool) {
	if w.byPrev {
		prev := rec.Event.GetPrevSeq()
		return prev == w.prev, prev > w.prev
	}
	return rec.Seq == w.seq, rec.Seq > w.seq
}

func newOwners() *owners {
	return &owners{owned: map[string]*[Partitions]atomic.Bool{}, waiters: map[waitKey][]waiter{}}
}

// partitions returns the ownership flags of a projection's partitions.
func (o *owners) partitions(projection string) *[Partitions]atomic.Bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	f, ok := o.owned[projection]
	if !ok {
		f = new([Partitions]atomic.Bool)
		o.owned[projection] = f
	}
	return f
}

// owns reports whether this process's consumer of the projection's partition has been receiving
// its messages.
func (o *owners) owns(projection string, part int) bool {
	return o.partitions(projection)[part].Load()
}

// waitSeq registers for the record at seq of the issue to be applied by the projection's owner
// here; the channel receives it (or an empty Record when the owner moved past it unseen). cancel
// unregisters.
func (o *owners) waitSeq(projection, issue string, seq uint64) (<-chan Record, func()) {
	return o.wait(projection, issue, waiter{seq: seq})
}

// waitNext registers, before an append conditional on prev, for the record that follows prev.
func (o *owners) waitNext(projection, issue string, prev uint64) (<-chan Record, func()) {
	return o.wait(projection, issue, waiter{prev: prev, byPrev: true})
}

func (o *owners) wait(projection, issue string, w waiter) (<-chan Record, func()) {
	k := waitKey{projection, issue}
	w.ch = make(chan Record, 1)
	o.mu.Lock()
	o.waiters[k] = append(o.waiters[k], w)
	o.mu.Unlock()
	return w.ch, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		ws := o.waiters[k][:0]
		for _, x := range o.waiters[k] {
			if x.ch != w.ch {
				ws = append(ws, x)
			}
		}
		if len(ws) == 0 {
			delete(o.waiters, k)
		} else {
			o.waiters[k] = ws
		}
	}
}

// applied tells the waiters of the projection that recs are applied.
func (o *owners) applied(projection string, recs ...Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.waiters) == 0 {
		return
	}
	for _, rec := range recs {
		k := waitKey{projection, rec.Event.GetIssueId()}
		ws := o.waiters[k]
		if len(ws) == 0 {
			continue
		}
		rest := ws[:0]
		for _, w := range ws {
			switch match, past := w.meets(rec); {
			case match:
				w.ch <- rec
			case past:
				w.ch <- Record{}
			default:
				rest = append(rest, w)
			}
		}
		if len(rest) == 0 {
			delete(o.waiters, k)
		} else {
			o.waiters[k] = rest
		}
	}
}

// reactionKey marks a context in which a consumer of the projection runs a reaction: a Decide
// there must not wait for that consumer, which waits for the reaction.
type reactionKey struct{ projection string }

func inReaction(ctx context.Context, projection string) bool {
	return ctx.Value(reactionKey{projection}) != nil
}

func withReaction(ctx context.Context, projection string) context.Context {
	return context.WithValue(ctx, reactionKey{projection}, true)
}

// ownerKey marks the context of a partition owner's consumer applying a batch.
type ownerKey struct{}

// ByOwner reports whether ctx is that of a partition's owner applying its consumer's batch. The
// owner is its issues' one writer, so a projection may trust what it kept in memory of them
// without reading it again: a write from elsewhere (a handover, a wiped Redis) still makes the
// projection's conditional write refuse, and the projection then reads.
func ByOwner(ctx context.Context) bool { return ctx.Value(ownerKey{}) != nil }

// OwnerContext marks ctx as the owner's, as its consumer does; tests use it to apply a batch the
// way the owner does.
func OwnerContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, ownerKey{}, true)
}

// PartitionCache is a projection that keeps its issues' states in memory between batches. Forget
// drops what it keeps of a partition's issues: the consumer calls it when its ownership of the
// partition begins anew, since another owner may have written them meanwhile.
type PartitionCache interface {
	Forget(partition int)
}
