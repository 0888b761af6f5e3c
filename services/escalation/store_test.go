package escalation_test

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

// redisses are the kinds of Redis a store runs on: one server, and a cluster of three masters.
var redisses = []struct {
	name    string
	connect func(t *testing.T) redis.UniversalClient
}{
	{"on one server", func(t *testing.T) redis.UniversalClient { return redistest.Client(t, redistest.Run(t)) }},
	{"on a cluster", func(t *testing.T) redis.UniversalClient { return redistest.ClusterClient(t, redistest.RunCluster(t)) }},
}

// lifecycles applies servicetest.Lifecycle to n issues, the i-th's all i%groups minutes later
// than the history says (its events and its deadlines), so that issues of many partitions come
// due and breach at the same millisecond; only the first upTo events of each history are applied
// (0: all). It returns the issues.
func lifecycles(t *testing.T, s *store.Store, n, groups, upTo int) []string {
	t.Helper()
	var ids []string
	var recs []eventlog.Record
	seq, prev := uint64(0), map[string]uint64{}
	for i := range n {
		id := fmt.Sprintf("SHARD-%04d", i)
		ids = append(ids, id)
		evs := servicetest.Lifecycle(id)
		if upTo > 0 {
			evs = evs[:upTo]
		}
		for _, ev := range evs {
			seq++
			ev = shifted(ev, time.Duration(i%groups)*time.Minute)
			ev.PrevSeq, prev[id] = prev[id], seq
			recs = append(recs, eventlog.Record{Seq: seq, Time: ev.GetOccurredAt().AsTime(), Event: ev})
		}
	}
	errs, err := s.ApplyBatch(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("apply %d: %v", recs[i].Seq, err)
		}
	}
	partitions := map[int]bool{}
	for _, id := range ids {
		partitions[eventlog.Partition(id)] = true
	}
	if len(partitions) < eventlog.Partitions {
		t.Fatalf("the issues fall in %d partitions of %d; the test means to use them all", len(partitions), eventlog.Partitions)
	}
	return ids
}

func TestBreachesPageThroughEveryShardNewestFirstWithoutSkippingOrRepeating(t *testing.T) {
	t.Parallel()
	for _, r := range redisses {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			s := store.New(r.connect(t), nil, nil)
			// Two breaches each, a hundred issues to a millisecond, and more breaches in each shard
			// than the store reads of one at a time.
			lifecycles(t, s, 1100, 11, 0)
			all, _, err := s.Breaches(t.Context(), store.Recorded{}, store.Cursor{}, 5000, func(domain.Breach) bool { return true })
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 2200 {
				t.Fatalf("listed %d breaches, want 2200", len(all))
			}
			newestFirst := slices.IsSortedFunc(all, func(a, b domain.Breach) int {
				if c := b.BreachedAt.Compare(a.BreachedAt); c != 0 {
					return c
				}
				return cmp.Compare(name(b), name(a))
			})
			if !newestFirst {
				t.Errorf("the breaches are not newest first, by name within a millisecond: %v", names(all))
			}
			// A period from the fourth millisecond a breach was recorded in up to (not including)
			// the seventh: read as a range of scores, with the bounds' own milliseconds checked.
			var times []time.Time
			for _, b := range all {
				if !slices.ContainsFunc(times, b.BreachedAt.Equal) {
					times = append(times, b.BreachedAt)
				}
			}
			slices.SortFunc(times, time.Time.Compare)
			period := store.Recorded{From: times[3], Until: times[6]}
			within := func(b domain.Breach) bool {
				return !b.BreachedAt.Before(period.From) && b.BreachedAt.Before(period.Until)
			}
			for _, tc := range []struct {
				name   string
				limit  int
				period store.Recorded
				keep   func(domain.Breach) bool
			}{
				{"every breach, 97 a page", 97, store.Recorded{}, func(domain.Breach) bool { return true }},
				{"one department's, 300 a page", 300, store.Recorded{}, func(b domain.Breach) bool { return b.DepartmentID == "water" }},
				{"a few, seven a page", 7, store.Recorded{}, func(b domain.Breach) bool { return b.IssueID < "SHARD-0030" }},
				{"a period's, 45 a page", 45, period, within},
				{"one department's in a period, 11 a page", 11, period, func(b domain.Breach) bool { return within(b) && b.DepartmentID == "water" }},
			} {
				var want []string
				for _, b := range all {
					if tc.keep(b) {
						want = append(want, name(b))
					}
				}
				var got []string
				cursor := store.Cursor{}
				for page := 0; ; page++ {
					bs, next, err := s.Breaches(t.Context(), tc.period, cursor, tc.limit, tc.keep)
					if err != nil {
						t.Fatal(err)
					}
					if len(bs) > tc.limit || (next != store.Cursor{} && len(bs) != tc.limit) {
						t.Fatalf("%s: page %d holds %d breaches with next %v; want a full page whenever more follow", tc.name, page, len(bs), next)
					}
					got = append(got, names(bs)...)
					if next == (store.Cursor{}) {
						break
					}
					cursor = next
				}
				if !slices.Equal(got, want) || len(want) == 0 {
					t.Errorf("%s: paged\n%v\nwant\n%v", tc.name, got, want)
				}
			}
		})
	}
}

func TestTheTimersOfEveryShardComeDueEarliestFirst(t *testing.T) {
	t.Parallel()
	for _, r := range redisses {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := store.New(r.connect(t), nil, nil)
			// Raised and routed: two departments, each with a report-in and a resolve deadline.
			lifecycles(t, s, 40, 8, 2)
			if n, err := s.OpenTimers(ctx); err != nil || n != 160 {
				t.Fatalf("OpenTimers = %d, %v; want 160", n, err)
			}
			first := servicetest.LifecycleStart.Add(time.Hour) // the report-in deadline of the issues stored on time
			due, more, err := s.Due(ctx, first.Add(3*time.Minute), 1000)
			if err != nil || more {
				t.Fatalf("Due = %v, more %v, %v; want all that is due", due, more, err)
			}
			// Issues i%8 in 0..3 have report-in deadlines by then: 20 issues, two departments each.
			if len(due) != 40 {
				t.Fatalf("%d timers due, want 40: %v", len(due), due)
			}
			if !slices.IsSortedFunc(due, func(a, b domain.Timer) int {
				return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Name(), b.Name()))
			}) {
				t.Errorf("due timers not earliest first: %v", due)
			}
			// Five each from eight shards holding five each: every page is full, so only what
			// lies before the earliest page's end is sure to be earliest of all.
			some, more, err := s.Due(ctx, first.Add(3*time.Minute), 5)
			if err != nil || !more || len(some) == 0 || len(some) > 5 || !slices.Equal(some, due[:len(some)]) {
				t.Errorf("Due with limit 5 = %v, more %v, %v; want some of the earliest five, %v, and more", some, more, err, due[:5])
			}
			// A lane reads only its own partitions' shards, and all that is due there.
			lane := []int{1, 5}
			mine, more, err := s.DueIn(ctx, first.Add(3*time.Minute), 1000, lane)
			want := slices.DeleteFunc(slices.Clone(due), func(tm domain.Timer) bool {
				return !slices.Contains(lane, eventlog.Partition(tm.IssueID))
			})
			if err != nil || more || len(want) == 0 || !slices.Equal(mine, want) {
				t.Errorf("DueIn(partitions %v) = %v, more %v, %v; want %v", lane, mine, more, err, want)
			}
			next, ok, err := s.EarliestAfter(ctx, first.Add(3*time.Minute))
			if err != nil || !ok || !next.At.Equal(first.Add(4*time.Minute)) {
				t.Errorf("EarliestAfter = %v, %v, %v; want a report-in at %v", next, ok, err, first.Add(4*time.Minute))
			}
		})
	}
}

func TestDroppingATimerLeavesItWhenItCameDueAtAnotherTime(t *testing.T) {
	t.Parallel()
	for _, r := range redisses {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			rdb := r.connect(t)
			s := store.New(rdb, nil, nil)
			id := lifecycles(t, s, 8, 1, 2)[0]
			deadline := servicetest.LifecycleStart.Add(time.Hour)
			moved := domain.Timer{IssueID: id, UnitID: "water", Kind: domain.ReportIn, At: deadline.Add(-time.Minute)}
			if err := s.DropTimer(ctx, moved); err != nil {
				t.Fatal(err)
			}
			if due, _, err := s.Due(ctx, deadline, 1000); err != nil || !slices.ContainsFunc(due, func(tm domain.Timer) bool { return tm.Name() == moved.Name() }) {
				t.Fatalf("a timer judged at another due time was dropped: due %v, %v", due, err)
			}
			judged := moved
			judged.At = deadline
			// And Redis has lost its scripts meanwhile, as after a restart or a failover.
			redistest.FlushScripts(t, rdb)
			if err := s.DropTimer(ctx, judged); err != nil {
				t.Fatal(err)
			}
			if due, _, err := s.Due(ctx, deadline, 1000); err != nil || slices.ContainsFunc(due, func(tm domain.Timer) bool { return tm.Name() == judged.Name() }) {
				t.Fatalf("a timer judged at its due time stayed: due %v, %v", due, err)
			}
			// Many at once, several to a shard (each issue's two departments), one judged at
			// another due time: only that one stays.
			due, _, err := s.Due(ctx, deadline, 1000)
			if err != nil || len(due) < 4 {
				t.Fatalf("Due = %v, %v; want several timers to drop", due, err)
			}
			kept := due[0]
			misjudged := kept
			misjudged.At = kept.At.Add(-time.Minute)
			if err := s.DropTimers(ctx, append(slices.Clone(due[1:]), misjudged)); err != nil {
				t.Fatal(err)
			}
			if left, _, err := s.Due(ctx, deadline, 1000); err != nil || !slices.Equal(left, []domain.Timer{kept}) {
				t.Fatalf("after dropping %d timers at once, %v are due (%v); want only %v", len(due), left, err, kept)
			}
		})
	}
}

// shifted is a copy of ev with every time it holds moved d later.
func shifted(ev *whistlev1.Event, d time.Duration) *whistlev1.Event {
	ev = proto.CloneOf(ev)
	move := func(ts **timestamppb.Timestamp) {
		if *ts != nil {
			*ts = timestamppb.New((*ts).AsTime().Add(d))
		}
	}
	move(&ev.OccurredAt)
	for _, dp := range ev.GetRouted().GetDispatches() {
		move(&dp.ReportInBy)
		move(&dp.ResolveBy)
	}
	if b := ev.GetBreached(); b != nil {
		move(&b.Deadline)
		move(&b.ClearedAt)
	}
	return ev
}

// name is the name of a breach, which is its timer's.
func name(b domain.Breach) string { return domain.Name(b.IssueID, b.DepartmentID, b.Kind) }

// names are the names of breaches, in order.
func names(bs []domain.Breach) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = name(b)
	}
	return out
}
