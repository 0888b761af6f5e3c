// Package store keeps the escalation projection in Redis: one JSON state per issue, the open
// deadlines and the breaches view in sorted sets sharded by the issues' partitions, and a feed of
// breaches per area and per department, all written with the event that changes them, so the
// timers and the views can never disagree with the state.
package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/scorecard"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

// Redis keys. All begin with the service's name, so that a reset removes exactly these.
//
// The timers and the breaches are indexes over every issue, and every event that opens or clears
// a deadline writes them, so each is sharded by the issue's partition (eventlog.Partition), one
// key per partition: "escalation:timers:{p3}". The braces make "p3" a Redis Cluster hash tag, so
// a partition's timers and breaches share a slot, and the eventlog.Partitions
// shards spread over the masters. A write touches the one shard of its issue; a reader of the
// whole index (the timer loop, the list of breaches, the counts) reads every shard, in one
// pipeline, which on a cluster is one round trip per master.
const Prefix = "escalation:"

// TimersKey is the shard holding the issue's open deadlines: it scores each "<issue>|<dept>|<kind>"
// by its unix milliseconds, rounded up.
func TimersKey(issueID string) string { return timersShard(eventlog.Partition(issueID)) }

// BreachesKey is the shard holding the issue's breaches: it scores each, named like its timer, by
// the unix milliseconds it was recorded.
func BreachesKey(issueID string) string { return breachesShard(eventlog.Partition(issueID)) }

// ExtensionsKey is the shard holding the issue's pending extension requests: it scores each,
// named "<issue>|<unit>" (domain.PendingExtension.ListName), by the unix milliseconds the stream
// stored the request. Its details are the issue's document's, as a breach's are.
func ExtensionsKey(issueID string) string { return extensionsShard(eventlog.Partition(issueID)) }

func timersShard(partition int) string { return Prefix + "timers:" + eventlog.PartitionTag(partition) }
func extensionsShard(partition int) string {
	return Prefix + "extensions:" + eventlog.PartitionTag(partition)
}
func breachesShard(partition int) string {
	return Prefix + "breaches:" + eventlog.PartitionTag(partition)
}

// FeedLen is how many entries the breach feed keeps: a live watch resumes from a position at most
// this many breaches (and steps of their chains) old, of any scope.
const FeedLen = 50_000

// BreachFeedKey is the key of the breach feed: a Redis Stream with one entry per breach recorded,
// and per step of its chain that told somebody, naming the issue and the event's stream sequence,
// and in its scopes the breach's grid, community, street and the city, its department and its
// unit. A watch follows the scope it shows (feed.Hub.FollowIn). One feed for every scope costs a
// breach one entry where a feed per scope cost it five or six, which in a storm of breaches were
// most of redis-server's work. The braces are the Redis Cluster hash tag the feed shares, on a
// cluster, with the index that keeps it free of repeats (see feed.Pending).
const BreachFeedKey = Prefix + "feed:{breaches}"

// Name is the service the store belongs to, and the prefix of its keys.
const Name = "escalation"

// Store is the escalation projection. It is safe for concurrent use.
type Store struct {
	*redisdoc.Store[*domain.Issue]
	rdb redis.UniversalClient
	// onTimer, when set, learns the earliest due time each apply added, so that a sleeping timer
	// loop can wake early for it.
	onTimer func(at time.Time)
	// cal is the city's working calendar, by which reminders and chain steps of policies with
	// working time come due.
	cal sla.Calendar
}

var _ eventlog.BatchProjection = (*Store)(nil)

// New returns the store on rdb; cal is the city's working calendar. onTimer may be nil.
func New(rdb redis.UniversalClient, cal sla.Calendar, onTimer func(at time.Time)) *Store {
	s := &Store{rdb: rdb, onTimer: onTimer, cal: cal}
	s.Store = &redisdoc.Store[*domain.Issue]{
		Service: Name,
		RDB:     rdb,
		Empty:   func(id string) *domain.Issue { return &domain.Issue{ID: id, Calendar: cal} },
		Fold:    s.fold,
		OnQuarantine: func(ctx context.Context, st *domain.Issue, _ quarantine.Mark, tx redis.Pipeliner) {
			for _, t := range st.Timers() {
				tx.ZRem(ctx, TimersKey(t.IssueID), t.Name())
			}
			// Nobody can decide a request on a quarantined issue: it leaves the list.
			for _, p := range st.PendingExtensions() {
				tx.ZRem(ctx, ExtensionsKey(p.IssueID), p.ListName())
			}
		},
	}
	return s
}

// Calendar is the working calendar the store counts reminders and chain steps by.
func (s *Store) Calendar() sla.Calendar { return s.cal }

// Issue returns an issue's state; an issue never seen has an empty state at sequence 0.
func (s *Store) Issue(ctx context.Context, issueID string) (*domain.Issue, error) {
	st, err := s.Load(ctx, issueID)
	if st != nil {
		st.Calendar = s.cal
	}
	return st, err
}

// Latest returns an issue's state for the timer loop to decide on: as this store last wrote or
// read it when it holds the issue, else as Redis holds it (see redisdoc.Store.Latest). The loop's
// appends are conditional on its sequence, so a stale state costs a refused append, never a
// wrong event.
func (s *Store) Latest(ctx context.Context, issueID string) (*domain.Issue, error) {
	st, err := s.Store.Latest(ctx, issueID)
	if st != nil {
		st.Calendar = s.cal
	}
	return st, err
}

// Apply folds one record into its issue's state and, with it, brings the timers in line with what
// the issue owes and adds any breach to the view; then it tells the timer loop of the earliest
// timer it added.
func (s *Store) Apply(ctx context.Context, rec eventlog.Record) error {
	errs, err := s.ApplyBatch(ctx, []eventlog.Record{rec})
	if err != nil {
		return err
	}
	return errs[0]
}

// ApplyBatch is Apply for a batch of records, as the consumer takes them.
func (s *Store) ApplyBatch(ctx context.Context, recs []eventlog.Record) ([]error, error) {
	var added addedTimer
	errs, err := s.Store.ApplyBatch(context.WithValue(ctx, addedTimerKey{}, &added), recs)
	if !added.at.IsZero() && s.onTimer != nil {
		s.onTimer(added.at) // waking early for a fold that was not written costs the loop one look
	}
	return errs, err
}

// Next applies rec, which follows st, to st in place: what the projection holds once it applied
// rec, for a command that decided on st and appended rec conditionally on it, to answer without
// a read.
func Next(st *domain.Issue, rec eventlog.Record) error {
	if err := st.Apply(rec.Seq, rec.Time, rec.Event.GetCorrelationId(), fromProto(rec.Event)); err != nil {
		return fmt.Errorf("escalation store: next %s at %d: %w", st.ID, rec.Seq, err)
	}
	return nil
}

// addedTimer carries, out of a fold, the earliest due time of the timers it added.
type addedTimer struct{ at time.Time }

type addedTimerKey struct{}

// fold applies one record to the issue's state, and queues its index writes on the store's pipeline.
func (s *Store) fold(ctx context.Context, st *domain.Issue, rec eventlog.Record, tx redis.Pipeliner) error {
	ev := rec.Event
	st.Calendar = s.cal // a document read back from Redis does not carry it
	before := st.Timers()
	asked := st.PendingExtensions()
	if err := st.Apply(rec.Seq, rec.Time, ev.GetCorrelationId(), fromProto(ev)); err != nil {
		return err // an event the domain refuses wraps eventlog.ErrImpossible
	}
	scorecard.Fold(ctx, &st.Scorecard, rec, tx)
	indexExtensions(ctx, tx, asked, st.PendingExtensions())
	var earliest time.Time
	kept := make([]bool, len(before)) // which of the timers before the event it leaves
	for _, t := range st.Timers() {
		if i := slices.IndexFunc(before, t.SameClock); i >= 0 {
			kept[i] = true
			if before[i].At.Equal(t.At) {
				continue
			}
			// The same clock comes due at another time: a late clearing event owes its breach now.
		}
		tx.ZAdd(ctx, TimersKey(st.ID), redis.Z{Score: float64(ceilMilli(t.At)), Member: t.Name()})
		if earliest.IsZero() || t.At.Before(earliest) {
			earliest = t.At
		}
	}
	for i, t := range before {
		if !kept[i] {
			tx.ZRem(ctx, TimersKey(st.ID), t.Name())
		}
	}
	if added, ok := ctx.Value(addedTimerKey{}).(*addedTimer); ok && !earliest.IsZero() &&
		(added.at.IsZero() || earliest.Before(added.at)) {
		added.at = earliest
	}
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Breached:
		indexBreach(ctx, tx, st, p.Breached)
	case *whistlev1.Event_Escalated:
		reindexBreach(ctx, tx, st, p.Escalated)
	}
	return nil
}

// indexExtensions brings the index of pending extension requests in line with the issue's, from
// before to after an event: a request asked is added, one decided, or whose part closed, removed.
// Both writes are ones a fold may run again.
func indexExtensions(ctx context.Context, tx redis.Pipeliner, before, after []domain.PendingExtension) {
	for _, p := range after {
		if i := slices.IndexFunc(before, func(b domain.PendingExtension) bool { return b.UnitID == p.UnitID }); i >= 0 && before[i].Seq == p.Seq {
			continue // the same request, listed already
		}
		tx.ZAdd(ctx, ExtensionsKey(p.IssueID), redis.Z{Score: float64(p.Extension.At.UnixMilli()), Member: p.ListName()})
	}
	for _, b := range before {
		if !slices.ContainsFunc(after, func(p domain.PendingExtension) bool { return p.UnitID == b.UnitID }) {
			tx.ZRem(ctx, ExtensionsKey(b.IssueID), b.ListName())
		}
	}
}

// reindexBreach announces, in the breach's feed, the step of its chain that told somebody, so that
// live watches show the level it reached. The breaches view reads the level from the document.
func reindexBreach(ctx context.Context, tx redis.Pipeliner, st *domain.Issue, e *whistlev1.BreachEscalated) {
	b, ok := st.Breach(assignment.UnitOf(e.GetDepartmentId(), e.GetUnitId()), assignmentpb.DeadlineKind(e.GetKind()))
	if !ok || b.LevelSeq != st.LastSeq {
		return // no breach, or a step that told nobody and left its level as it was
	}
	announce(ctx, tx, st, b, b.LevelSeq)
}

// indexBreach adds the breach just applied to st to the breaches view, and announces it in the
// feed in the scopes of its grid, community, street and city, and of its department, which live
// watches of those scopes follow. The entries go in with the state, or before it (see
// feed.Pending), so a watch that sees one reads the state with the breach. The view holds only
// the breach's name, by its time: its details are the document's, which the view reads, so that a
// breach is written once.
func indexBreach(ctx context.Context, tx redis.Pipeliner, st *domain.Issue, e *whistlev1.DeadlineBreached) {
	b, ok := st.Breach(assignment.UnitOf(e.GetDepartmentId(), e.GetUnitId()), assignmentpb.DeadlineKind(e.GetKind()))
	if !ok {
		return // a breach of a unit never summoned has nothing to show
	}
	tx.ZAdd(ctx, BreachesKey(b.IssueID), redis.Z{Score: float64(b.BreachedAt.UnixMilli()), Member: b.ListName()})
	announce(ctx, tx, st, b, b.Seq)
}

// announce appends the event at seq, a breach or a step of its chain, to the breach feed, in the
// scopes of the breach's grid, community, street and city, and of its department and unit.
func announce(ctx context.Context, tx redis.Pipeliner, st *domain.Issue, b domain.Breach, seq uint64) {
	scopes := make([]string, 0, 6)
	for _, scope := range []string{st.GridID, st.CommunityID, st.StreetID, catalog.CityScope, b.DepartmentID, b.UnitID} {
		if scope != "" && !slices.Contains(scopes, scope) {
			scopes = append(scopes, scope)
		}
	}
	feed.Append(ctx, tx, BreachFeedKey, b.IssueID, seq, FeedLen, scopes...)
}

// ScorecardFacts reads the scorecards' facts of the issues from their documents (scorecard.Facts),
// decoding only those.
func (s *Store) ScorecardFacts(ctx context.Context, issueIDs []string) (map[string]*scorecard.Issue, error) {
	docs, err := s.Documents(ctx, issueIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*scorecard.Issue, len(docs))
	for id, raw := range docs {
		var doc struct {
			Scorecard scorecard.Issue `json:"scorecard"`
		}
		if err := redisdoc.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("escalation store: decode the scorecard of %s: %w", id, err)
		}
		out[id] = &doc.Scorecard
	}
	return out, nil
}

// BreachAt returns the issue's breach recorded by the event at seq, or whose chain's step at seq
// reached its level, once the projection has applied it: it reads the issue again while it is
// behind seq, for at most feed.MaxLag (a feed entry is written before the state it announces). It
// never writes. ok is false when the issue has no such breach (a later step took its level).
func (s *Store) BreachAt(ctx context.Context, issueID string, seq uint64) (b domain.Breach, ok bool, err error) {
	st, err := feed.ReadAtLeast(ctx, seq, feed.MaxLag, func(ctx context.Context) (*domain.Issue, uint64, error) {
		st, err := s.Load(ctx, issueID)
		if err != nil {
			return nil, 0, err
		}
		return st, st.LastSeq, nil
	})
	if err != nil {
		return domain.Breach{}, false, err
	}
	for _, a := range st.Assignments {
		for _, b := range a.Breaches {
			if b.Seq == seq || b.LevelSeq == seq {
				return b, true, nil
			}
		}
		for _, b := range a.Earlier {
			if b.Seq == seq {
				return b, true, nil
			}
		}
	}
	return domain.Breach{}, false, nil
}

// dropTimers removes each timer only while it is still due at the time the caller judged, and
// answers how many it removed. One call takes every timer of a batch in one shard: a call has a
// cost of its own in redis-server, which one call per timer paid a storm's worth of times.
//
// KEYS[1] the timers shard; ARGV[2i-1] the i-th timer's name, ARGV[2i] its score as judged.
var dropTimers = redisx.NewScript(`
local dropped = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    dropped = dropped + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return dropped`)

// DropTimer removes a timer that the timer loop found owes nothing at its due time t.At, unless
// the timer has since come due at another time. It writes the timers shard alone: the issue's
// document lives in another slot (on a cluster, on another master), so no transaction can hold
// both, and none is needed.
//
// The loop drops a timer on one of two verdicts, each final at that due time. Either the issue is
// quarantined, and then nothing more is folded into it; or its state, read at any sequence,
// knows the assignment and says the clock was breached or cleared by its deadline, which no
// later event undoes (the loop never drops a timer on a state that has yet to see the dispatch,
// see app.Timers). Between the verdict and this write the projection may still write the timer:
//
//   - a clearing event stored after the deadline moves it to fire at once (assignment.DueNow):
//     its score is no longer t.At, so it stays, and fires;
//   - a fold that runs through the issue from an earlier state (a rebuild after Redis was wiped)
//     adds it at t.At again while the clock runs in that earlier state; removing it then loses
//     nothing, since the same fold goes on to the events the verdict was drawn from, which close
//     the clock and remove the timer themselves.
//
// So a timer still due at t.At here is one the verdict covers, and any other is left alone.
func (s *Store) DropTimer(ctx context.Context, t domain.Timer) error {
	return s.DropTimers(ctx, []domain.Timer{t})
}

// DropTimers is DropTimer for many timers, in one round trip and one script call per shard.
func (s *Store) DropTimers(ctx context.Context, timers []domain.Timer) error {
	if len(timers) == 0 {
		return nil
	}
	byShard := map[string][]any{}
	for _, t := range timers {
		key := TimersKey(t.IssueID)
		byShard[key] = append(byShard[key], t.Name(), ceilMilli(t.At))
	}
	pipe := s.rdb.Pipeline()
	for key, args := range byShard {
		dropTimers.EvalSha(ctx, pipe, []string{key}, args...)
	}
	// A Redis that lost the script refuses each drop; Exec loads it and runs them again.
	_, err := redisx.Exec(ctx, s.rdb, pipe)
	if err != nil {
		return fmt.Errorf("store: drop %d timers: %w", len(timers), err)
	}
	return nil
}

// EarliestAfter returns the timer that comes due first after now.
func (s *Store) EarliestAfter(ctx context.Context, now time.Time) (domain.Timer, bool, error) {
	from := "(" + strconv.FormatInt(now.UnixMilli(), 10)
	firsts, err := s.eachTimersShard(ctx, func(p redis.Pipeliner, key string) *redis.ZSliceCmd {
		return p.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: key, Start: from, Stop: "+inf", ByScore: true, Count: 1})
	})
	if err != nil || len(firsts) == 0 {
		return domain.Timer{}, false, err
	}
	return firsts[0], true, nil
}

// Due returns up to limit open deadlines that have come due at now, earliest first, and whether
// more may be due than it returned. Each shard is asked for its earliest few (twice its share of
// limit), not for limit each: in a storm every shard holds more than limit, and reading limit from
// each would read and sort Partitions times what fires. Only the timers no later than the last
// of every shard that answered a full page are sure to be the earliest of all, so the rest are
// left to the next call.
func (s *Store) Due(ctx context.Context, now time.Time, limit int64) ([]domain.Timer, bool, error) {
	return s.DueIn(ctx, now, limit, everyShard)
}

// DueIn is Due over the timers shards of some partitions only: a lane of the timer loop reads its
// own shards' (see app.FireLanes).
func (s *Store) DueIn(ctx context.Context, now time.Time, limit int64, partitions []int) ([]domain.Timer, bool, error) {
	if len(partitions) == 0 {
		return nil, false, nil
	}
	until := strconv.FormatInt(now.UnixMilli(), 10)
	perShard := max(2*limit/int64(len(partitions)), minDuePerShard)
	pages, err := s.shardTimers(ctx, partitions, func(p redis.Pipeliner, key string) *redis.ZSliceCmd {
		return p.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: key, Start: "-inf", Stop: until, ByScore: true, Count: perShard})
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: due timers: %w", err)
	}
	var cut *domain.Timer // the earliest last timer of a full page
	for _, page := range pages {
		if int64(len(page)) == perShard && (cut == nil || compareTimers(page[len(page)-1], *cut) < 0) {
			cut = &page[len(page)-1]
		}
	}
	due := sortTimers(slices.Concat(pages...))
	if cut != nil {
		due = due[:sort.Search(len(due), func(i int) bool { return compareTimers(due[i], *cut) > 0 })]
	}
	more := cut != nil || int64(len(due)) > limit
	return due[:min(int64(len(due)), limit)], more, nil
}

// minDuePerShard is the fewest timers Due asks a shard for.
const minDuePerShard = 2

// eachTimersShard sends one query to every timers shard, in one pipeline, and returns the timers
// they answer, earliest first (by name within a millisecond).
func (s *Store) eachTimersShard(ctx context.Context, query func(p redis.Pipeliner, key string) *redis.ZSliceCmd) ([]domain.Timer, error) {
	pages, err := s.shardTimers(ctx, everyShard, query)
	if err != nil {
		return nil, err
	}
	return sortTimers(slices.Concat(pages...)), nil
}

// everyShard names every timers shard by its partition.
var everyShard = func() []int {
	all := make([]int, eventlog.Partitions)
	for p := range all {
		all[p] = p
	}
	return all
}()

// shardTimers sends one query to the timers shard of each of the partitions, in one pipeline, and
// returns each shard's answer as Redis ordered it.
func (s *Store) shardTimers(ctx context.Context, partitions []int, query func(p redis.Pipeliner, key string) *redis.ZSliceCmd) ([][]domain.Timer, error) {
	cmds := make([]*redis.ZSliceCmd, len(partitions))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, partition := range partitions {
			cmds[i] = query(p, timersShard(partition))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	pages := make([][]domain.Timer, len(cmds))
	for i, cmd := range cmds {
		for _, z := range cmd.Val() {
			t, err := timer(z)
			if err != nil {
				return nil, err
			}
			pages[i] = append(pages[i], t)
		}
	}
	return pages, nil
}

// sortTimers sorts timers earliest first, by name within a millisecond, as Redis orders a shard.
func sortTimers(timers []domain.Timer) []domain.Timer {
	slices.SortFunc(timers, compareTimers)
	return timers
}

// compareTimers orders timers as sortTimers does.
func compareTimers(a, b domain.Timer) int { return cmp.Or(a.At.Compare(b.At), compareNames(a, b)) }

// compareNames orders two timers as their names compare, byte by byte, as Redis orders the
// members of one score, without building the names: a storm's timers share one millisecond, and
// building two names a comparison made sorting a batch cost more than firing it.
func compareNames(a, b domain.Timer) int {
	pa, pb := nameParts(a), nameParts(b)
	i, j := 0, 0 // the part, and the byte within it, of a; likewise k, l of b
	k, l := 0, 0
	for {
		for i < len(pa) && j == len(pa[i]) {
			i, j = i+1, 0
		}
		for k < len(pb) && l == len(pb[k]) {
			k, l = k+1, 0
		}
		switch {
		case i == len(pa) && k == len(pb):
			return 0
		case i == len(pa):
			return -1
		case k == len(pb):
			return 1
		}
		if c := cmp.Compare(pa[i][j], pb[k][l]); c != 0 {
			return c
		}
		j, l = j+1, l+1
	}
}

// nameParts are the pieces of a timer's Name, in order.
func nameParts(t domain.Timer) [7]string {
	p := [7]string{t.IssueID, "|", t.UnitID, "|", string(t.Kind)}
	if t.Step != domain.BreachStep {
		p[5], p[6] = "|", string(t.Step)
	}
	return p
}

// OpenTimers counts the open deadlines, over every shard.
func (s *Store) OpenTimers(ctx context.Context) (int64, error) {
	cmds := make([]*redis.IntCmd, eventlog.Partitions)
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.ZCard(ctx, timersShard(i))
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("store: open timers: %w", err)
	}
	var n int64
	for _, cmd := range cmds {
		n += cmd.Val()
	}
	return n, nil
}

// ceilMilli is t in unix milliseconds rounded up, so that a timer whose score has passed is a
// deadline that has passed: a timer never comes due a fraction of a millisecond early.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

// timer reads a sorted-set entry of a timers shard.
func timer(z redis.Z) (domain.Timer, error) {
	name, _ := z.Member.(string)
	t, err := domain.ParseName(name)
	if err != nil {
		return domain.Timer{}, err
	}
	t.At = time.UnixMilli(int64(z.Score)).UTC()
	return t, nil
}

// fromProto translates the events escalation cares about; any other event only moves the issue's
// sequence.
func fromProto(ev *whistlev1.Event) domain.Event {
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		return domain.Raised{GridID: p.Raised.GetGridId(), CommunityID: p.Raised.GetCommunityId(), StreetID: p.Raised.GetStreetId(),
			CategoryID: p.Raised.GetCategoryId()}
	case *whistlev1.Event_Routed:
		return domain.Routed{Dispatches: assignmentpb.Dispatches(p.Routed), Withdrawn: withdrawn(p.Routed.GetWithdrawn())}
	case *whistlev1.Event_NeedsDispatch:
		return domain.Routed{Dispatches: assignmentpb.Desk(p.NeedsDispatch), Withdrawn: withdrawn(p.NeedsDispatch.GetWithdrawn())}
	case *whistlev1.Event_Returned:
		return domain.Ended{DepartmentID: p.Returned.GetDepartmentId(), UnitID: p.Returned.GetUnitId()}
	case *whistlev1.Event_Acknowledged:
		return domain.Acknowledged{DepartmentID: p.Acknowledged.GetDepartmentId(), UnitID: p.Acknowledged.GetUnitId()}
	case *whistlev1.Event_Resolved:
		return domain.Resolved{DepartmentID: p.Resolved.GetDepartmentId(), UnitID: p.Resolved.GetUnitId()}
	case *whistlev1.Event_Verified:
		return reopened(p.Verified.GetReopened())
	case *whistlev1.Event_Rated:
		return reopened(p.Rated.GetReopened())
	case *whistlev1.Event_ExtensionRequested, *whistlev1.Event_ExtensionDecided, *whistlev1.Event_Urged:
		return supervision(ev)
	case *whistlev1.Event_Reminded:
		r := p.Reminded
		return domain.Reminded{DepartmentID: r.GetDepartmentId(), UnitID: r.GetUnitId(), Kind: assignmentpb.DeadlineKind(r.GetKind()), Percent: int(r.GetPercent())}
	case *whistlev1.Event_Escalated:
		e := p.Escalated
		out := domain.Escalated{DepartmentID: e.GetDepartmentId(), UnitID: e.GetUnitId(), Kind: assignmentpb.DeadlineKind(e.GetKind()),
			Level: int(e.GetLevel()), Repeat: int(e.GetRepeat()), Person: e.GetPersonId()}
		for _, l := range e.GetSkipped() {
			out.Skipped = append(out.Skipped, int(l))
		}
		return out
	case *whistlev1.Event_Pushed:
		officers := map[string]string{}
		for _, push := range p.Pushed.GetPushes() {
			officers[assignment.UnitOf(push.GetDepartmentId(), push.GetUnitId())] = push.GetOfficerId()
		}
		return domain.Pushed{Officers: officers}
	case *whistlev1.Event_HandedOver:
		h := p.HandedOver
		return domain.HandedOver{UnitID: assignment.UnitOf(h.GetDepartmentId(), h.GetUnitId()), To: h.GetToOfficerId()}
	case *whistlev1.Event_Breached:
		return domain.Breached{
			DepartmentID: p.Breached.GetDepartmentId(),
			UnitID:       p.Breached.GetUnitId(),
			Kind:         assignmentpb.DeadlineKind(p.Breached.GetKind()),
			Deadline:     assignmentpb.Time(p.Breached.GetDeadline()),
		}
	}
	return domain.Other{}
}

// supervision reads an event of supervision: a unit's extension request, a supervisor's decision
// on it, or an urge. The domain stamps each with the time the stream stored it.
func supervision(ev *whistlev1.Event) domain.Event {
	var at time.Time
	by := ev.GetActor().GetSubject()
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_ExtensionRequested:
		e := p.ExtensionRequested
		return domain.ExtensionRequested{DepartmentID: e.GetDepartmentId(), UnitID: e.GetUnitId(), Extension: assignmentpb.Extension(e, at, by)}
	case *whistlev1.Event_ExtensionDecided:
		return domain.ExtensionDecided{Decision: assignmentpb.Decision(p.ExtensionDecided, at, by), RequestID: p.ExtensionDecided.GetRequestId()}
	case *whistlev1.Event_Urged:
		u := p.Urged
		return domain.Urged{DepartmentID: u.GetDepartmentId(), UnitID: u.GetUnitId(), RequestID: u.GetRequestId()}
	}
	return domain.Other{}
}

// reopened reads the part a verification or a rating reopens; Other when it reopens none.
func reopened(d *whistlev1.Dispatch) domain.Event {
	if d == nil {
		return domain.Other{}
	}
	return domain.Reopened{DepartmentID: d.GetDepartmentId(), UnitID: d.GetUnitId(),
		ReportInBy: assignmentpb.Time(d.GetReportInBy()), ResolveBy: assignmentpb.Time(d.GetResolveBy())}
}

// withdrawn lists the units an event withdraws.
func withdrawn(ws []*whistlev1.Withdrawal) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.GetUnitId())
	}
	return out
}
