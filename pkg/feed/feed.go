// Package feed keeps the feeds that live views read: one capped Redis Stream per department or
// area, each entry naming an issue and the stream sequence of the event that changed it there.
//
// A projection appends to a feed in its fold, through the same pipeline as the state the entry
// announces, so a feed is derived from the event stream like everything else in Redis. A watch
// follows only the feeds of what it shows, from a position (an entry's id), so that a client that
// reconnects with the position of the last entry it received misses nothing and sees nothing
// twice; and it reads the state an entry announces from the projection, waiting, if the state is
// behind, until it reaches the entry's sequence.
//
// Every watch of a process reads its feeds through one Hub, which holds one Redis connection
// blocked in XREAD for all of them, so the connections a process holds do not grow with its
// watches and every entry is read from Redis once per process, not once per watch. A watch
// that takes its entries more slowly than they come reads what it fell behind by from the feed
// itself, at its own pace, and joins the hub again.
package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
)

// Field names of an entry.
const (
	fieldIssue = "issue"
	fieldSeq   = "seq"
	// fieldIn holds an entry's scopes, separated by scopeSep.
	fieldIn = "in"
)

// scopeSep separates the scopes of an entry; a scope is an id, which holds no space.
const scopeSep = " "

// Errors a Follow or a read returns.
var (
	// ErrBadPosition means a position is not of the form a feed's positions take.
	ErrBadPosition = errors.New("not a feed position")
	// ErrGone means the feed cannot resume from a position: the entries after it were trimmed
	// (the feed keeps a bounded number), or the position is not one of this feed (it was
	// rebuilt since). The client starts again from what the view holds now.
	ErrGone = errors.New("the feed cannot resume from this position")
	// ErrLagging means a view did not reach the sequence of an entry within MaxLag.
	ErrLagging = errors.New("the view has not caught up with the event stream")
)

// Oldest, given to Follow as a position, follows a feed from the oldest entry it still holds,
// whatever was trimmed before it.
const Oldest = "-"

// Entry is one change in a feed: the issue it concerns and the stream sequence of the event that
// made it, at its position in the feed.
type Entry struct {
	// Position is the entry's id in the feed; following after it resumes after this entry.
	Position string
	Issue    string
	Seq      uint64
	// Scopes are the ids the entry concerns (its areas, its department), when the feed is
	// shared by several scopes and each follower takes only its own (see Hub.FollowIn); nil when
	// it names none.
	Scopes []string
}

// In reports whether the entry concerns scope; every entry is in the empty scope.
func (e Entry) In(scope string) bool { return scope == "" || slices.Contains(e.Scopes, scope) }

// lastKey is the hash beside a feed that holds, for each issue with an entry in the feed, the
// sequence of its latest entry. It shares the feed's hash tag, so a script may use both on a
// Redis Cluster.
func lastKey(key string) string { return key + ":last" }

// appendScript appends entries, each unless the feed already holds one of its issue at its
// sequence or later (a fold run again after a crash between its writes), and then, once the feed
// is at least a slack over its cap, trims it to the cap, forgetting the issues whose latest entry
// was trimmed. It answers how many entries it appended.
//
// KEYS[1] the feed, KEYS[2] its lastKey; ARGV[1] the cap, ARGV[2] the slack; then three arguments
// an entry, in order: the issue, the sequence, and the entry's scopes separated by spaces (empty
// for none).
var appendScript = redisx.NewScript(`
local added = 0
for i = 3, #ARGV, 3 do
  local issue, seq, scopes = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local last = redis.call('HGET', KEYS[2], issue)
  if not last or tonumber(last) < tonumber(seq) then
    if scopes == '' then
      redis.call('XADD', KEYS[1], '*', 'issue', issue, 'seq', seq)
    else
      redis.call('XADD', KEYS[1], '*', 'issue', issue, 'seq', seq, 'in', scopes)
    end
    redis.call('HSET', KEYS[2], issue, seq)
    added = added + 1
  end
end
local over = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if added > 0 and over >= tonumber(ARGV[2]) then
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', over)) do
    local f, issue, seq = e[2], nil, nil
    for i = 1, #f, 2 do
      if f[i] == 'issue' then issue = f[i + 1] elseif f[i] == 'seq' then seq = f[i + 1] end
    end
    if issue and redis.call('HGET', KEYS[2], issue) == seq then
      redis.call('HDEL', KEYS[2], issue)
    end
  end
  redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[1])
end
return added
`)

// Append queues on tx the entry announcing that the event at seq changed issue, in the feed at
// key, which keeps its newest maxLen entries (and up to trimSlack more between trims). The key
// must carry a hash tag ("x:feed:{id}").
//
// It appends nothing when the feed already holds an entry of the issue at seq or later. A
// projection applies one issue's events in order, so that only happens when a fold runs again
// for an event whose entry was written but whose state was not (a crash between the two): the
// feed then holds the change once, and a client that resumed between the two runs does not see
// it twice. Queue the entry before the state it announces (or append it with that state, see
// Pending), and a watch that reads the state once it sees the entry waits for it (see ReadAtLeast).
//
// scopes, when given, are the ids the entry concerns, for a feed shared by several scopes: one
// entry in a shared feed costs Redis one script where an entry in each scope's own feed would cost
// one per scope, and a follower of one scope takes only its entries (Hub.FollowIn).
//
// The entry runs as a script by its digest: execute tx with redisx.Exec, which loads the script
// into a Redis that lost it and runs the refused script again. Under Announced it queues nothing;
// under Batched it joins the batch's entries, which Batch.Queue queues, or which a writer takes
// to append each with the state it announces (Batch.Take, Pending).
func Append(ctx context.Context, tx redis.Pipeliner, key, issue string, seq uint64, maxLen int64, scopes ...string) {
	if ctx.Value(announcedKey{}) != nil {
		return
	}
	entry := Pending{Feed: key, MaxLen: maxLen, Issue: issue, Seq: seq, Scopes: scopes}
	if b, ok := ctx.Value(batchKey{}).(*Batch); ok {
		b.entries = append(b.entries, entry)
		return
	}
	Queue(ctx, tx, []Pending{entry})
}

// queueAppend queues on tx one call of appendScript with entries, three arguments each.
func queueAppend(ctx context.Context, tx redis.Pipeliner, key string, maxLen int64, entries []any) {
	appendScript.EvalSha(ctx, tx, []string{key, lastKey(key)}, append([]any{maxLen, trimSlack(maxLen)}, entries...)...)
}

// Batch gathers the entries that a batch of folds appends, to queue them with one call of the
// script per feed: a call costs redis-server a few microseconds of its own beyond the commands it
// runs, which one call per entry paid a storm of breaches' worth of times. A projection's batch
// holds at most a consumer's batch of records (eventlog.BatchLimit), so one call stays short. A
// writer that appends each entry with the state it announces, and only when it writes that state,
// takes them instead (Take; see Pending).
type Batch struct {
	entries []Pending // in the order they were added
}

// Pending is an entry that a fold under Batched announced and nobody has appended yet.
//
// Queue appends it with the script that keeps a feed free of repeats: an entry is appended unless
// the feed holds one of its issue at its sequence or later. A writer whose one script both writes
// the state that the entry announces, conditionally on the sequence that state was folded from,
// and appends the entry (redisdoc on one server) needs no such check: the condition lets one
// write of each event's state through, so the entry goes in once, at the moment the state does,
// and never before it. Such a writer appends Fields to the feed at Feed and then trims the feed
// to MaxLen once it is Slack past it, as the script does.
type Pending struct {
	Feed   string // the feed's key
	MaxLen int64  // the feed's cap
	Issue  string
	Seq    uint64
	Scopes []string
}

// Fields are the entry's fields and values, in the order XADD takes them.
func (p Pending) Fields() []any {
	f := []any{fieldIssue, p.Issue, fieldSeq, strconv.FormatUint(p.Seq, 10)}
	if len(p.Scopes) > 0 {
		f = append(f, fieldIn, strings.Join(p.Scopes, scopeSep))
	}
	return f
}

// Slack is how far past MaxLen the feed grows before it is trimmed back to MaxLen.
func (p Pending) Slack() int64 { return trimSlack(p.MaxLen) }

type batchKey struct{}

// Batched returns a context under which Append adds its entries to the returned Batch instead of
// queueing them: a projection folding a batch of records queues them all with Batch.Queue, before
// the states they announce, or takes them to append with those states (Batch.Take).
func Batched(ctx context.Context) (context.Context, *Batch) {
	b := &Batch{}
	return context.WithValue(ctx, batchKey{}, b), b
}

// Queue queues on tx the entries added so far, one script call per feed, each feed's entries in
// the order they were added, and empties the batch.
func (b *Batch) Queue(ctx context.Context, tx redis.Pipeliner) {
	Queue(ctx, tx, b.Take())
}

// Take returns the entries added so far, in the order they were added, and empties the batch.
func (b *Batch) Take() []Pending {
	out := b.entries
	b.entries = nil
	return out
}

// Queue queues on tx the entries, one call of the script that keeps a feed free of repeats per
// feed, each feed's entries in their order.
func Queue(ctx context.Context, tx redis.Pipeliner, entries []Pending) {
	var feeds []string
	args := map[string][]any{} // three arguments an entry, as appendScript takes them
	caps := map[string]int64{}
	for _, e := range entries {
		if _, seen := args[e.Feed]; !seen {
			feeds = append(feeds, e.Feed)
		}
		args[e.Feed] = append(args[e.Feed], e.Issue, strconv.FormatUint(e.Seq, 10), strings.Join(e.Scopes, scopeSep))
		caps[e.Feed] = e.MaxLen
	}
	for _, key := range feeds {
		queueAppend(ctx, tx, key, caps[key], args[key])
	}
}

// announcedKey marks the context of folds whose changes were announced already.
type announcedKey struct{}

// Announced marks ctx as that of folds running again over events whose entries another writer
// appended already (a projection folding an issue again from its first event, to mend its indexes
// after a refused write): Append then queues nothing. Its check of the issue's last entry would
// catch most of them, but not an entry trimmed from the feed since, which would announce an old
// change as new.
func Announced(ctx context.Context) context.Context {
	return context.WithValue(ctx, announcedKey{}, true)
}

// trimSlack is how far past its cap a feed grows before it is trimmed back to the cap: a
// hundredth of the cap (at least one entry, so that a small feed is trimmed at once). Trimming at
// each append past the cap would cost every append of a full feed a range read, a lookup and a
// trim; in a storm of breaches, five such feeds per breach made most of redis-server's work.
func trimSlack(maxLen int64) int64 { return max(1, maxLen/100) }

// pos is a position: a Redis Stream id, milliseconds and a counter.
type pos struct{ ms, n uint64 }

// String is the position as Redis writes it.
func (p pos) String() string { return strconv.FormatUint(p.ms, 10) + "-" + strconv.FormatUint(p.n, 10) }

func (p pos) less(q pos) bool { return p.ms < q.ms || p.ms == q.ms && p.n < q.n }

// parsePos reads a position.
func parsePos(s string) (pos, error) {
	ms, n, ok := strings.Cut(s, "-")
	a, errA := strconv.ParseUint(ms, 10, 64)
	b, errB := strconv.ParseUint(n, 10, 64)
	if !ok || errA != nil || errB != nil {
		return pos{}, fmt.Errorf("%q: %w", s, ErrBadPosition)
	}
	return pos{a, b}, nil
}

// CheckPosition reports whether s has the form of a position (without asking any feed).
func CheckPosition(s string) error {
	_, err := parsePos(s)
	return err
}

// entryOf reads one stream message as an entry.
func entryOf(m redis.XMessage) (Entry, pos, error) {
	p, err := parsePos(m.ID)
	if err != nil {
		return Entry{}, pos{}, err
	}
	issue, _ := m.Values[fieldIssue].(string)
	raw, _ := m.Values[fieldSeq].(string)
	seq, err := strconv.ParseUint(raw, 10, 64)
	if issue == "" || err != nil {
		return Entry{}, pos{}, fmt.Errorf("feed: entry %s is not an issue and a sequence: %v", m.ID, m.Values)
	}
	e := Entry{Position: m.ID, Issue: issue, Seq: seq}
	if in, _ := m.Values[fieldIn].(string); in != "" {
		e.Scopes = strings.Split(in, scopeSep)
	}
	return e, p, nil
}

// MaxLag is how long a reader waits for a view to reach the sequence of an entry it read (or of
// an event it knows is stored) before it gives up with ErrLagging.
const MaxLag = 10 * time.Second

// ReadAtLeast reads a view with read until the sequence it reports has reached seq, and returns
// it. An entry is queued before the state it announces, and a watch may follow an event its
// projection has yet to apply, so the first read may come early; it reads again after a growing
// pause, for at most limit (zero: until ctx ends), and then returns ErrLagging. It never writes.
func ReadAtLeast[T any](ctx context.Context, seq uint64, limit time.Duration, read func(ctx context.Context) (T, uint64, error)) (T, error) {
	var deadline time.Time
	if limit > 0 {
		deadline = time.Now().Add(limit)
	}
	pause := time.Millisecond
	for {
		v, at, err := read(ctx)
		if err != nil || at >= seq {
			return v, err
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return v, fmt.Errorf("waited %s for event %d, the view is at %d: %w", limit, seq, at, ErrLagging)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}
