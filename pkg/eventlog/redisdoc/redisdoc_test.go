package redisdoc_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// note is an issue's state in these tests: the events folded into it, each named by the writer
// that folded it, so that a document shows whose write Redis kept.
type note struct {
	ID    string           `json:"id"`
	Last  uint64           `json:"last"`
	Mark  *quarantine.Mark `json:"mark,omitempty"`
	Folds []string         `json:"folds"`
}

func (n *note) Position() (*uint64, **quarantine.Mark) { return &n.Last, &n.Mark }

// feedKey is the feed every writer announces its folds in.
const feedKey = "test:feed:{notes}"

// latestKey is an index overwritten at every fold: each issue's last fold, as its document has it.
const latestKey = "test:latest"

// writer is a store whose fold names itself in the state, announces the event in the feed, and
// counts the folds of each issue.
type writer struct {
	*redisdoc.Store[*note]
	mu    sync.Mutex
	folds map[string]int
	// onFold, when set, runs at each fold, before it queues its writes.
	onFold func(rec eventlog.Record)
	// feedCap is the feed's cap.
	feedCap int64
}

func newWriter(rdb redis.UniversalClient, name string) *writer {
	w := &writer{folds: map[string]int{}, feedCap: 100_000}
	w.Store = &redisdoc.Store[*note]{
		Service: "test",
		RDB:     rdb,
		Empty:   func(id string) *note { return &note{ID: id} },
		Fold: func(ctx context.Context, st *note, rec eventlog.Record, tx redis.Pipeliner) error {
			w.mu.Lock()
			w.folds[st.ID]++
			w.mu.Unlock()
			if w.onFold != nil {
				w.onFold(rec)
			}
			st.Folds = append(st.Folds, name+"@"+strconv.FormatUint(rec.Seq, 10))
			feed.Append(ctx, tx, feedKey, st.ID, rec.Seq, w.feedCap)
			tx.HSet(ctx, latestKey, st.ID, st.Folds[len(st.Folds)-1])
			return nil
		},
	}
	return w
}

// foldsOf returns how many times w folded each issue, and starts counting again.
func (w *writer) foldsOf() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.folds
	w.folds = map[string]int{}
	return out
}

// apply applies recs as one batch of the partition's owner, and fails the test on any error.
func (w *writer) apply(t *testing.T, recs ...eventlog.Record) {
	t.Helper()
	errs, err := w.ApplyBatch(eventlog.OwnerContext(t.Context()), recs)
	if err != nil {
		t.Fatalf("apply %d records: %v", len(recs), err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("apply %d: %v", recs[i].Seq, err)
		}
	}
}

// record is the event at seq of an issue whose previous event is at prev.
func record(issue string, seq, prev uint64) eventlog.Record {
	return eventlog.Record{Seq: seq, Event: &whistlev1.Event{IssueId: issue, PrevSeq: prev}}
}

// folds returns the folds in each issue's document as Redis holds it.
func folds(t *testing.T, w *writer, issues ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range issues {
		st, err := w.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = strings.Join(st.Folds, " ")
	}
	return out
}

// feedEntries renders the feed's entries as issue@seq, sorted.
func feedEntries(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	out := feedInOrder(t, rdb)
	slices.Sort(out)
	return out
}

// feedInOrder renders the feed's entries as issue@seq, in the feed's order.
func feedInOrder(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	ms, err := rdb.XRange(t.Context(), feedKey, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%v@%v", m.Values["issue"], m.Values["seq"]))
	}
	return out
}

// onEachRedis runs test on one server and on a cluster, whose masters hold the issues' documents
// in different slots.
func onEachRedis(t *testing.T, test func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("on one server", func(t *testing.T) {
		t.Parallel()
		test(t, redistest.Client(t, redistest.Run(t)))
	})
	t.Run("on a cluster", func(t *testing.T) {
		t.Parallel()
		test(t, redistest.ClusterClient(t, redistest.RunCluster(t)))
	})
}

func TestABatchWritesEveryIssueButTheOneAnotherWriterMovedAndFoldsThatOneAgain(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		one, two := newWriter(rdb, "one"), newWriter(rdb, "two")
		one.apply(t, record("A", 1, 0), record("B", 2, 0), record("C", 3, 0))
		// Another writer (a new owner of the partition) applies B's next event first.
		two.apply(t, record("B", 4, 2))
		one.foldsOf()
		// The owner trusts what it holds of B, folds it, and its write of B alone is refused.
		one.apply(t, record("A", 5, 1), record("B", 4, 2), record("C", 6, 3))
		if got, want := one.foldsOf(), map[string]int{"A": 1, "B": 1, "C": 1}; !maps.Equal(got, want) {
			t.Errorf("folded %v, want %v: only the refused issue is folded again, and its event is then found applied", got, want)
		}
		want := map[string]string{"A": "one@1 one@5", "B": "one@2 two@4", "C": "one@3 one@6"}
		if got := folds(t, one, "A", "B", "C"); !maps.Equal(got, want) {
			t.Fatalf("the documents hold %v, want %v", got, want)
		}
		// The owner now holds B as Redis does, and folds its next event on it.
		one.apply(t, record("B", 7, 4))
		if got := folds(t, one, "B")["B"]; got != "one@2 two@4 one@7" {
			t.Fatalf("B holds %s, want one@2 two@4 one@7", got)
		}
		// Each event is announced once: B@4 by the writer whose write of it went through, not
		// by the owner whose write was refused.
		want2 := []string{"A@1", "A@5", "B@2", "B@4", "B@7", "C@3", "C@6"}
		if got := feedEntries(t, rdb); !slices.Equal(got, want2) {
			t.Fatalf("the feed holds %v, want %v", got, want2)
		}
	})
}

func TestABatchOfMoreDocumentsThanOneScriptWritesWritesEveryOne(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		w := newWriter(rdb, "one")
		n := 2*redisdoc.MaxDocsPerWrite + 1
		var recs []eventlog.Record
		var ids []string
		for i := range n {
			ids = append(ids, "I"+strconv.Itoa(i))
			recs = append(recs, record(ids[i], uint64(i+1), 0))
		}
		if err := redisx.LoadScripts(t.Context(), rdb); err != nil {
			t.Fatal(err)
		}
		resetStats(t, rdb)
		w.apply(t, recs...)
		got := folds(t, w, ids...)
		for i, id := range ids {
			if want := "one@" + strconv.Itoa(i+1); got[id] != want {
				t.Fatalf("%s holds %q, want %q", id, got[id], want)
			}
		}
		// One script per MaxDocsPerWrite documents on one server, which appends their feed entries
		// too; on a cluster one per document, and one more for the n feed entries.
		want := n + 1
		if _, cluster := rdb.(*redis.ClusterClient); !cluster {
			want = (n + redisdoc.MaxDocsPerWrite - 1) / redisdoc.MaxDocsPerWrite
		}
		if calls := scriptCalls(t, rdb); calls != want {
			t.Fatalf("the documents and their feed entries took %d script calls, want %d", calls, want)
		}
		if entries := feedEntries(t, rdb); len(entries) != n {
			t.Fatalf("the feed holds %d entries, want one for each of the %d documents", len(entries), n)
		}
	})
}

func TestABatchTrimsTheFeedToItsCapKeepingTheNewestEntries(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		w := newWriter(rdb, "one")
		w.feedCap = 3
		var recs []eventlog.Record
		for i := range 10 {
			recs = append(recs, record("I"+strconv.Itoa(i), uint64(i+1), 0))
		}
		w.apply(t, recs...)
		if got, want := feedInOrder(t, rdb), []string{"I7@8", "I8@9", "I9@10"}; !slices.Equal(got, want) {
			t.Fatalf("the feed holds %v, want the newest three, in order: %v", got, want)
		}
	})
}

func TestABatchAfterRedisLostItsScriptsWritesEachDocumentAndFeedEntryOnce(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		w := newWriter(rdb, "one")
		ids := []string{"A", "B", "C", "D", "E", "F"}
		var first, next []eventlog.Record
		for i, id := range ids {
			first = append(first, record(id, uint64(i+1), 0))
			next = append(next, record(id, uint64(len(ids)+i+1), uint64(i+1)))
		}
		w.apply(t, first...) // a new Redis holds no scripts
		redistest.FlushScripts(t, rdb)
		w.apply(t, next...)
		want := map[string]int{}
		for _, id := range ids {
			want[id] = 2
		}
		if got := w.foldsOf(); !maps.Equal(got, want) {
			t.Errorf("folded %v, want %v", got, want)
		}
		got := folds(t, w, ids...)
		for i, id := range ids {
			if want := fmt.Sprintf("one@%d one@%d", i+1, len(ids)+i+1); got[id] != want {
				t.Errorf("%s holds %q, want %q", id, got[id], want)
			}
		}
		var entries []string
		for _, rec := range append(first, next...) {
			entries = append(entries, fmt.Sprintf("%s@%d", rec.Event.GetIssueId(), rec.Seq))
		}
		slices.Sort(entries)
		if got := feedEntries(t, rdb); !slices.Equal(got, entries) {
			t.Fatalf("the feed holds %v, want %v", got, entries)
		}
	})
}

func TestAQuarantineAfterRedisLostItsScriptsMarksTheIssue(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		w := newWriter(rdb, "one")
		w.apply(t, record("A", 1, 0))
		redistest.FlushScripts(t, rdb)
		if err := w.Quarantine(t.Context(), "A", quarantine.Mark{Seq: 2}); err != nil {
			t.Fatal(err)
		}
		pos, err := w.Position(t.Context(), "A")
		if err != nil {
			t.Fatal(err)
		}
		if pos.LastSeq != 2 || pos.Quarantine == nil || pos.Quarantine.Seq != 2 {
			t.Fatalf("A stands at %d, quarantined %v; want 2, quarantined at 2", pos.LastSeq, pos.Quarantine)
		}
	})
}

// resetStats sets every master's command counts to zero.
func resetStats(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	if err := redisx.ForEachMaster(t.Context(), rdb, func(ctx context.Context, server *redis.Client) error {
		return server.ConfigResetStat(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
}

// scriptCalls is how many scripts the masters of rdb ran by digest since resetStats.
func scriptCalls(t *testing.T, rdb redis.UniversalClient) int {
	t.Helper()
	var mu sync.Mutex
	total := 0
	if err := redisx.ForEachMaster(t.Context(), rdb, func(ctx context.Context, server *redis.Client) error {
		info, err := server.Info(ctx, "commandstats").Result()
		if err != nil {
			return err
		}
		for line := range strings.Lines(info) {
			stats, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:calls=")
			if !ok {
				continue
			}
			calls, _, _ := strings.Cut(stats, ",")
			n, err := strconv.Atoi(calls)
			if err != nil {
				return fmt.Errorf("commandstats: %q: %w", line, err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return total
}

func TestAPrefetchHoldsEachDocumentAsRedisHasIt(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		a := newWriter(rdb, "a")
		var recs []eventlog.Record
		var ids []string
		for i := range 300 { // more documents than cores, decoded on each
			id := fmt.Sprintf("P%03d", i)
			ids = append(ids, id)
			recs = append(recs, record(id, uint64(2*i+1), 0), record(id, uint64(2*i+2), uint64(2*i+1)))
		}
		a.apply(t, recs...)

		b := newWriter(rdb, "b") // holds nothing yet
		if err := b.Prefetch(t.Context(), append(slices.Clone(ids), "never-seen")); err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			st, ok, err := b.Held(id)
			if err != nil || !ok || st.Last != uint64(2*i+2) || strings.Join(st.Folds, " ") != fmt.Sprintf("a@%d a@%d", 2*i+1, 2*i+2) {
				t.Fatalf("after the prefetch, %s is held %v (%v) as %+v; want its document at %d folded by a", id, ok, err, st, 2*i+2)
			}
		}
		if pos, ok := b.Known("never-seen"); !ok || pos.LastSeq != 0 {
			t.Fatalf("an issue never seen is held %v at %d; want held, empty", ok, pos.LastSeq)
		}
	})
}

// history is the stream in these tests: every issue's events, as the event log reads them.
type history []eventlog.Record

func (h history) Read(_ context.Context, issueID string, after uint64) ([]eventlog.Record, error) {
	var out []eventlog.Record
	for _, rec := range h {
		if rec.Event.GetIssueId() == issueID && rec.Seq > after {
			out = append(out, rec)
		}
	}
	return out, nil
}

// applyFrom applies recs as apply does, from a consumer of stream.
func (w *writer) applyFrom(t *testing.T, stream history, recs ...eventlog.Record) {
	t.Helper()
	errs, err := w.ApplyBatch(eventlog.WithHistory(eventlog.OwnerContext(t.Context()), stream), recs)
	if err != nil {
		t.Fatalf("apply %d records: %v", len(recs), err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("apply %d: %v", recs[i].Seq, err)
		}
	}
}

func TestAWriteRefusedBecauseAnotherWriterWentFurtherLeavesTheIndexesAsTheDocumentHasThem(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		stream := history{record("B", 1, 0), record("B", 2, 1), record("B", 3, 2), record("B", 4, 3)}
		one, two := newWriter(rdb, "one"), newWriter(rdb, "two")
		// Another writer (a catch-up) takes B's first three events.
		two.applyFrom(t, stream, stream[:3]...)
		// The owner, trusting that B is new, folds only its first two: its index write lands after
		// the other's, from an older state, and its document write is refused.
		one.applyFrom(t, stream, stream[:2]...)
		latest := func() string {
			got, err := rdb.HGet(t.Context(), latestKey, "B").Result()
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := latest(); got != "one@3" {
			t.Fatalf("the index holds %s, want one@3: the refused writer folds B again from the stream, up to its document", got)
		}
		if got := folds(t, one, "B")["B"]; got != "one@1 one@2 one@3" {
			t.Fatalf("B holds %s, want one@1 one@2 one@3", got)
		}
		if got, want := feedEntries(t, rdb), []string{"B@1", "B@2", "B@3"}; !slices.Equal(got, want) {
			t.Fatalf("the feed holds %v, want %v: folding again announces nothing twice", got, want)
		}
		// That rewrite left B at sequence 3, and still refuses a writer that read it at 3 before:
		// its index write may have landed before the rewrite's.
		if seq, err := rdb.Get(t.Context(), "test:seq:{B}").Result(); err != nil || seq != "3/1" {
			t.Fatalf("B's sequence key holds %q (%v), want 3/1", seq, err)
		}
		two.foldsOf()
		two.applyFrom(t, stream, stream[3])
		if got := two.foldsOf()["B"]; got != 2 {
			t.Fatalf("the other writer folded B %d times, want 2: its write from 3 refused, then on what Redis holds", got)
		}
		if got := latest(); got != "two@4" {
			t.Fatalf("the index holds %s, want two@4", got)
		}
		if seq, err := rdb.Get(t.Context(), "test:seq:{B}").Result(); err != nil || seq != "4" {
			t.Fatalf("B's sequence key holds %q (%v), want 4", seq, err)
		}
	})
}

func TestAFoldAgainFromTheStreamAnnouncesNothing(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		stream := history{record("B", 1, 0), record("B", 2, 1), record("B", 3, 2)}
		one, two := newWriter(rdb, "one"), newWriter(rdb, "two")
		two.applyFrom(t, stream, stream...)
		// Between the owner's refused write and its fold again from the stream, the feed trims B's
		// entries away, and with them its record of B's last entry.
		firsts := 0
		one.onFold = func(rec eventlog.Record) {
			if rec.Seq == 1 {
				if firsts++; firsts == 2 {
					if err := rdb.Del(t.Context(), feedKey, feedKey+":last").Err(); err != nil {
						t.Error(err)
					}
				}
			}
		}
		one.applyFrom(t, stream, stream[:2]...)
		if firsts != 2 {
			t.Fatalf("B's first event folded %d times, want 2: the refused write, then the fold again", firsts)
		}
		if got := feedEntries(t, rdb); len(got) != 0 {
			t.Fatalf("the feed holds %v, want nothing: B's events were announced before", got)
		}
		if got := folds(t, one, "B")["B"]; got != "one@1 one@2 one@3" {
			t.Fatalf("B holds %s, want one@1 one@2 one@3", got)
		}
	})
}
