package feed_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/feed"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

// appendAll appends each change of issue at seq, each in a pipeline of its own, as folds do.
func appendAll(t *testing.T, rdb redis.UniversalClient, key string, maxLen int64, changes ...feed.Entry) {
	t.Helper()
	for _, c := range changes {
		pipe := rdb.Pipeline()
		feed.Append(t.Context(), pipe, key, c.Issue, c.Seq, maxLen, c.Scopes...)
		if _, err := redisx.Exec(t.Context(), rdb, pipe); err != nil {
			t.Fatalf("append %v: %v", c, err)
		}
	}
}

// change is an entry without its position.
func change(issue string, seq uint64) feed.Entry { return feed.Entry{Issue: issue, Seq: seq} }

// next takes n entries from f.
func next(t *testing.T, f *feed.Follower, n int) []feed.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out []feed.Entry
	for range n {
		e, err := f.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", out, err)
		}
		out = append(out, e)
	}
	return out
}

// changes renders entries as issue@seq, without positions.
func changes(es []feed.Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, e.Issue+"@"+strconv.FormatUint(e.Seq, 10))
	}
	return strings.Join(s, " ")
}

func TestAChangeAppendedAgainIsKeptOnce(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	key := "test:feed:{water}"
	// A fold that runs again after a crash between the entry and the state appends the same
	// change again; an issue's earlier change can only come from such a rerun too.
	appendAll(t, rdb, key, 100, change("A", 5), change("A", 5), change("B", 5), change("A", 3), change("A", 7), change("B", 5))
	dump, err := redistest.Dump(t.Context(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	want := "test:feed:{water} (stream)\n  issue=A seq=5\n  issue=A seq=7\n  issue=B seq=5\n" +
		"test:feed:{water}:last (hash)\n  A = 7\n  B = 5\n"
	if dump != want {
		t.Fatalf("the feed holds\n%s\nwant\n%s", dump, want)
	}
}

func TestAnAppendAfterRedisLostItsScriptsIsKeptOnce(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	key := "test:feed:{water}"
	appendAll(t, rdb, key, 100, change("A", 1))
	// A restart, a failover or SCRIPT FLUSH leaves Redis without the script.
	redistest.FlushScripts(t, rdb)
	appendAll(t, rdb, key, 100, change("A", 2), change("B", 3))
	dump, err := redistest.Dump(t.Context(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	want := "test:feed:{water} (stream)\n  issue=A seq=1\n  issue=A seq=2\n  issue=B seq=3\n" +
		"test:feed:{water}:last (hash)\n  A = 2\n  B = 3\n"
	if dump != want {
		t.Fatalf("the feed holds\n%s\nwant\n%s", dump, want)
	}
}

func TestABatchQueuesOneCallPerFeedAndKeepsWhatEntriesAppendedOneByOneKeep(t *testing.T) {
	t.Parallel()
	water, roads := "test:feed:{water}", "test:feed:{roads}"
	// Repeats, an issue's earlier change, and more than the water feed's cap of 3, so that the
	// batch trims it and forgets an issue it trimmed.
	waterChanges := []feed.Entry{change("A", 5), change("A", 5), change("B", 5), change("A", 3), change("A", 7),
		change("B", 5), change("C", 8), change("D", 9)}
	roadsChanges := []feed.Entry{{Issue: "X", Seq: 1, Scopes: []string{"street-1", "dept-2"}}, change("Y", 2)}

	oneByOne := redistest.Client(t, redistest.Run(t))
	appendAll(t, oneByOne, water, 3, waterChanges...)
	appendAll(t, oneByOne, roads, 100, roadsChanges...)

	batched := redistest.Client(t, redistest.Run(t))
	ctx, batch := feed.Batched(t.Context())
	pipe := batched.Pipeline()
	for i := range max(len(waterChanges), len(roadsChanges)) {
		if i < len(waterChanges) {
			c := waterChanges[i]
			feed.Append(ctx, pipe, water, c.Issue, c.Seq, 3, c.Scopes...)
		}
		if i < len(roadsChanges) {
			c := roadsChanges[i]
			feed.Append(ctx, pipe, roads, c.Issue, c.Seq, 100, c.Scopes...)
		}
	}
	if pipe.Len() != 0 {
		t.Fatalf("appends under Batched queued %d commands; want none until the batch is queued", pipe.Len())
	}
	batch.Queue(ctx, pipe)
	if pipe.Len() != 2 {
		t.Fatalf("the batch queued %d commands; want one script call per feed, 2", pipe.Len())
	}
	if _, err := redisx.Exec(ctx, batched, pipe); err != nil {
		t.Fatal(err)
	}

	want, err := redistest.Dump(t.Context(), oneByOne)
	if err != nil {
		t.Fatal(err)
	}
	got, err := redistest.Dump(t.Context(), batched)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("the batch left\n%s\nwhere one by one left\n%s", got, want)
	}
	if !strings.Contains(got, "test:feed:{water} (stream)\n  issue=A seq=7\n  issue=C seq=8\n  issue=D seq=9\n") ||
		strings.Contains(got, "  B = ") {
		t.Fatalf("the water feed was not trimmed to its newest 3, forgetting B:\n%s", got)
	}
}

func TestAFeedKeepsItsNewestEntriesAndForgetsTheIssuesItTrimmed(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	key := "test:feed:{water}"
	appendAll(t, rdb, key, 3, change("A", 1), change("B", 2), change("A", 3), change("C", 4), change("D", 5))
	dump, err := redistest.Dump(t.Context(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	want := "test:feed:{water} (stream)\n  issue=A seq=3\n  issue=C seq=4\n  issue=D seq=5\n" +
		"test:feed:{water}:last (hash)\n  A = 3\n  C = 4\n  D = 5\n"
	if dump != want {
		t.Fatalf("the feed holds\n%s\nwant\n%s", dump, want)
	}
}

func TestAFollowerFromNowTakesOnlyWhatIsAppendedAfterItJoined(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	hub := feed.NewHub(rdb)
	key := "test:feed:{water}"
	appendAll(t, rdb, key, 100, change("old", 1))
	f, err := hub.Follow(t.Context(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	appendAll(t, rdb, key, 100, change("A", 2), change("B", 3), change("A", 4))
	if got := changes(next(t, f, 3)); got != "A@2 B@3 A@4" {
		t.Fatalf("followed %s, want A@2 B@3 A@4", got)
	}
}

func TestAFollowerResumedAfterAPositionMissesNothingAndRepeatsNothing(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	hub := feed.NewHub(rdb)
	key := "test:feed:{water}"
	first, err := hub.Follow(t.Context(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	if first.From != "0-0" {
		t.Fatalf("a follower of an empty feed follows from %q, want 0-0", first.From)
	}
	appendAll(t, rdb, key, 100, change("A", 1), change("B", 2), change("C", 3))
	seen := next(t, first, 2)
	first.Stop() // the connection drops after two entries
	appendAll(t, rdb, key, 100, change("D", 4))

	resumed, err := hub.Follow(t.Context(), key, seen[1].Position)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Stop()
	if resumed.From != seen[1].Position {
		t.Fatalf("the resumed follower follows from %q, want %q", resumed.From, seen[1].Position)
	}
	appendAll(t, rdb, key, 100, change("E", 5))
	if got := changes(append(seen, next(t, resumed, 3)...)); got != "A@1 B@2 C@3 D@4 E@5" {
		t.Fatalf("followed %s across the drop, want A@1 B@2 C@3 D@4 E@5", got)
	}

	// From the start of the feed ("0-0", what a follower of an empty feed follows from).
	again, err := hub.Follow(t.Context(), key, first.From)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Stop()
	if got := changes(next(t, again, 5)); got != "A@1 B@2 C@3 D@4 E@5" {
		t.Fatalf("followed %s from the start, want everything", got)
	}
}

func TestAFollowerOfOneScopeOfASharedFeedTakesOnlyItsEntriesLiveAndWhenResumed(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	hub := feed.NewHub(rdb)
	key := "test:feed:{breaches}"
	in := func(issue string, seq uint64, scopes ...string) feed.Entry {
		return feed.Entry{Issue: issue, Seq: seq, Scopes: scopes}
	}
	grid, city, all := follow(t, hub, key, "grid-1"), follow(t, hub, key, "city"), follow(t, hub, key, "")
	appendAll(t, rdb, key, 100, in("A", 1, "grid-1", "city"), in("B", 2, "grid-2", "city"), in("C", 3, "grid-1", "city"),
		in("D", 4, "grid-2", "city"))
	seen := next(t, grid, 1)
	if got := changes(append(seen, next(t, grid, 1)...)); got != "A@1 C@3" {
		t.Fatalf("the grid's follower took %s, want A@1 C@3", got)
	}
	if got := changes(next(t, city, 4)); got != "A@1 B@2 C@3 D@4" {
		t.Fatalf("the city's follower took %s, want every entry", got)
	}
	if got := next(t, all, 4); changes(got) != "A@1 B@2 C@3 D@4" || strings.Join(got[1].Scopes, ",") != "grid-2,city" {
		t.Fatalf("a follower of every scope took %s, the second in %v; want every entry with its scopes", changes(got), got[1].Scopes)
	}

	// Resumed after A, with other scopes' entries between and after: from the feed, then live.
	appendAll(t, rdb, key, 100, in("E", 5, "grid-2", "city"), in("F", 6, "grid-1", "city"))
	resumed, err := hub.FollowIn(t.Context(), key, seen[0].Position, "grid-1")
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Stop()
	appendAll(t, rdb, key, 100, in("G", 7, "grid-2"), in("H", 8, "grid-1"))
	if got := changes(next(t, resumed, 3)); got != "C@3 F@6 H@8" {
		t.Fatalf("the resumed follower of the grid took %s, want C@3 F@6 H@8", got)
	}
}

// follow follows the scope of the feed at key from now on, until the test ends.
func follow(t *testing.T, hub *feed.Hub, key, scope string) *feed.Follower {
	t.Helper()
	f, err := hub.FollowIn(t.Context(), key, "", scope)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

func TestAPositionTheFeedCannotResumeFromIsRefused(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	hub := feed.NewHub(rdb)
	key := "test:feed:{water}"
	appendAll(t, rdb, key, 100, change("A", 1))
	f, err := hub.Follow(t.Context(), key, feed.Oldest)
	if err != nil {
		t.Fatal(err)
	}
	first := next(t, f, 1)[0]
	f.Stop()
	appendAll(t, rdb, key, 3, change("B", 2), change("C", 3), change("D", 4), change("E", 5))
	// The feed now holds C, D and E: A and B were trimmed.
	f, err = hub.Follow(t.Context(), key, feed.Oldest)
	if err != nil {
		t.Fatal(err)
	}
	held := next(t, f, 3)
	f.Stop()
	if got := changes(held); got != "C@3 D@4 E@5" {
		t.Fatalf("the oldest entries held are %s, want C@3 D@4 E@5", got)
	}

	tests := []struct {
		name  string
		after string
		want  error
	}{
		{"a position followed by trimmed entries", first.Position, feed.ErrGone},
		{"a position this feed never held", "1-0", feed.ErrGone},
		{"a position past the newest entry", "99999999999999-0", feed.ErrGone},
		{"not a position", "yesterday", feed.ErrBadPosition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := hub.Follow(t.Context(), key, tt.after); !errors.Is(err, tt.want) {
				t.Fatalf("Follow after %q: %v, want %v", tt.after, err, tt.want)
			}
		})
	}
	t.Run("the position held last resumes", func(t *testing.T) {
		f, err := hub.Follow(t.Context(), key, held[0].Position)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		if got := changes(next(t, f, 2)); got != "D@4 E@5" {
			t.Fatalf("followed %s, want D@4 E@5", got)
		}
	})
}

func TestFiftyFollowersOfTenFeedsShareOneBlockedConnectionAndTakeOnlyTheirOwnFeed(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	hub := feed.NewHub(rdb)
	key := func(d int) string { return fmt.Sprintf("test:feed:{dept-%d}", d) }
	type follower struct {
		dept int
		f    *feed.Follower
	}
	var fs []follower
	for d := range 10 {
		for range 5 {
			f, err := hub.Follow(t.Context(), key(d), "")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Stop()
			fs = append(fs, follower{d, f})
		}
	}
	wait.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		info, err := rdb.Info(t.Context(), "clients").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "blocked_clients:1\r") {
			return fmt.Errorf("want one blocked client:\n%s", info)
		}
		return nil
	})
	for d := range 10 {
		for i := range 3 {
			appendAll(t, rdb, key(d), 100, change(fmt.Sprintf("issue-%d-%d", d, i), uint64(10*d+i+1)))
		}
	}
	var wg sync.WaitGroup
	for _, fl := range fs {
		wg.Go(func() {
			got := changes(next(t, fl.f, 3))
			want := fmt.Sprintf("issue-%d-0@%d issue-%d-1@%d issue-%d-2@%d", fl.dept, 10*fl.dept+1, fl.dept, 10*fl.dept+2, fl.dept, 10*fl.dept+3)
			if got != want {
				t.Errorf("a follower of dept-%d took %s, want %s", fl.dept, got, want)
			}
		})
	}
	wg.Wait()
}

func TestOnAClusterEachFollowedSlotHasOneBlockedConnectionAndFollowersTakeOnlyTheirOwnFeed(t *testing.T) {
	t.Parallel()
	cluster := redistest.RunCluster(t)
	rdb := redistest.ClusterClient(t, cluster)
	hub := feed.NewHub(rdb)
	key := func(d int) string { return fmt.Sprintf("test:feed:{dept-%d}", d) }
	// blocked counts the connections blocked on every master.
	blocked := func() (int, error) {
		n := 0
		for _, srv := range cluster.Servers {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			info, err := c.Info(t.Context(), "clients").Result()
			_ = c.Close()
			if err != nil {
				return 0, err
			}
			for line := range strings.Lines(info) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "blocked_clients:"); ok {
					k, _ := strconv.Atoi(v)
					n += k
				}
			}
		}
		return n, nil
	}
	type follower struct {
		dept int
		f    *feed.Follower
	}
	var fs []follower
	ctx, stop := context.WithCancel(t.Context())
	for d := range 10 {
		for range 3 {
			f, err := hub.Follow(ctx, key(d), "")
			if err != nil {
				t.Fatal(err)
			}
			fs = append(fs, follower{d, f})
		}
	}
	wait.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n, err := blocked(); err != nil || n != 10 {
			return fmt.Errorf("%d connections blocked (%v), want one for each of the 10 feeds' slots", n, err)
		}
		return nil
	})
	for d := range 10 {
		for i := range 3 {
			appendAll(t, rdb, key(d), 100, change(fmt.Sprintf("issue-%d-%d", d, i), uint64(10*d+i+1)))
		}
	}
	var wg sync.WaitGroup
	for _, fl := range fs {
		wg.Go(func() {
			got := changes(next(t, fl.f, 3))
			want := fmt.Sprintf("issue-%d-0@%d issue-%d-1@%d issue-%d-2@%d", fl.dept, 10*fl.dept+1, fl.dept, 10*fl.dept+2, fl.dept, 10*fl.dept+3)
			if got != want {
				t.Errorf("a follower of dept-%d took %s, want %s", fl.dept, got, want)
			}
		})
	}
	wg.Wait()
	stop()
	wait.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n, err := blocked(); err != nil || n != 0 {
			return fmt.Errorf("%d connections still blocked (%v) with no feed followed", n, err)
		}
		return nil
	})
}

func TestAFollowerThatFallsBehindReadsWhatItMissedFromTheFeedAndMissesNothing(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	hub := feed.NewHub(rdb)
	key := "test:feed:{water}"
	slow, err := hub.Follow(t.Context(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Stop()
	other, err := hub.Follow(t.Context(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()
	const n = 1500 // more than a follower may leave untaken
	pipe := rdb.Pipeline()
	for i := range n {
		feed.Append(t.Context(), pipe, key, "issue-"+strconv.Itoa(i), uint64(i+1), n)
	}
	if _, err := redisx.Exec(t.Context(), rdb, pipe); err != nil {
		t.Fatal(err)
	}
	// Once the other follower has taken the last entry, live or from the feed, the hub has read
	// every entry and offered it to the slow one, which took none meanwhile: it has fallen behind.
	// Each still takes every entry, once, in order.
	for _, f := range []*feed.Follower{other, slow} {
		for i, e := range next(t, f, n) {
			if e.Seq != uint64(i+1) {
				t.Fatalf("entry %d is %s@%d, want seq %d", i, e.Issue, e.Seq, i+1)
			}
		}
	}
	appendAll(t, rdb, key, n, change("after", n+1))
	if got := changes(next(t, slow, 1)); got != fmt.Sprintf("after@%d", n+1) {
		t.Fatalf("after catching up the slow follower took %s, want the next entry live", got)
	}
}

func TestFollowersEndWithAnErrorWhenRedisGoesAway(t *testing.T) {
	t.Parallel()
	srv := redistest.Run(t)
	rdb := redistest.Client(t, srv)
	hub := feed.NewHub(rdb)
	f, err := hub.Follow(t.Context(), "test:feed:{water}", "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := f.Next(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with Redis gone: %v, want the read's failure", err)
	}
}

func TestReadAtLeastReadsAgainUntilTheViewReachesTheSequence(t *testing.T) {
	t.Parallel()
	var reads uint64
	v, err := feed.ReadAtLeast(t.Context(), 3, 0, func(context.Context) (string, uint64, error) {
		reads++
		return fmt.Sprintf("view at %d", reads), reads, nil
	})
	if err != nil || v != "view at 3" {
		t.Fatalf("ReadAtLeast = %q, %v; want the view at 3", v, err)
	}
	_, err = feed.ReadAtLeast(t.Context(), 3, time.Millisecond, func(context.Context) (string, uint64, error) {
		return "stuck", 1, nil
	})
	if !errors.Is(err, feed.ErrLagging) {
		t.Fatalf("ReadAtLeast on a view that never gets there: %v, want ErrLagging", err)
	}
}

func TestAFullFeedIsTrimmedBackToItsCapOnceItIsAHundredthOver(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t, redistest.Run(t))
	ctx := t.Context()
	key := "test:feed:{roads}"
	const maxLen = 300 // trimmed once 3 over
	length := func() int64 {
		n, err := rdb.XLen(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range maxLen + 2 {
		appendAll(t, rdb, key, maxLen, change(fmt.Sprintf("I%d", i), uint64(i+1)))
	}
	if n := length(); n != maxLen+2 {
		t.Fatalf("the feed holds %d entries two past its cap, want all %d until it is a hundredth over", n, maxLen+2)
	}
	appendAll(t, rdb, key, maxLen, change("LAST", maxLen+3))
	if n := length(); n != maxLen {
		t.Fatalf("the feed holds %d entries once a hundredth over its cap, want %d", n, maxLen)
	}
	// The issues whose entries were trimmed are forgotten: a later entry of one is appended.
	for _, gone := range []string{"I0", "I1", "I2"} {
		if held, err := rdb.HExists(ctx, key+":last", gone).Result(); err != nil || held {
			t.Fatalf("the trimmed issue %s is still remembered (%v)", gone, err)
		}
	}
	if held, err := rdb.HExists(ctx, key+":last", "I3").Result(); err != nil || !held {
		t.Fatalf("the kept issue I3 is forgotten (%v)", err)
	}
}
