// Package app holds the escalation service's work: the timer loop that turns passed deadlines into
// breach events, and the queries over the breaches view.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

// ServiceName is the escalation service's name, used as the actor of the events it writes.
const ServiceName = "escalation"

// LeaseCheck is the longest the loop sleeps: it renews or tries to take the lease this often,
// and so also notices timers that another replica added.
const LeaseCheck = time.Second

// DueBatch is how many due timers a lane fires in one pass before looking at the clock again: in
// a storm (deadlines that passed together, or while escalation was down) the first breach of each
// of a pass's issues is appended with the others' at once (see firePass).
const DueBatch = 500

// FireParallelism is how many issues' due timers that a pass fires one round trip at a time (an
// issue's later timers, reminders, chain steps) are fired at once. Such a fire waits on the
// append and its PubAck, so it is latency, not CPU, that many fires at once hide: whistle bench
// timers fired a storm 1.3 times as fast at 128 as at 16, and no faster at 256, when every fire
// was one.
const FireParallelism = 128

// FireLanes is how many lanes fire due timers at once. Each lane owns the timers shards of the
// partitions p with p % FireLanes equal to its number, so the lanes share no issue and their
// decisions and appends never meet; each fires its own shards' due timers, earliest first, pass
// after pass, without waiting for another's pass to end. A pass waits on Redis (the issues'
// states, then the dropped timers) and on the stream (the appends' acknowledgements) more than it
// computes, and the consumers folding the breaches keep both busy: lanes put one's waits under
// another's work. whistle bench timers fired a storm 1.1 to 1.2 times as fast in four lanes as in
// passes of 1,000 dealt out to four groups that each pass waited for.
const FireLanes = 4

// laneRun bounds how long the lanes fire before the loop looks at its lease again.
const laneRun = LeaseCheck / 2

// DefaultReconcileEvery is how often the holder of the lease compares the timers every issue
// owes with the index (see store.Reconcile), unless configured otherwise.
const DefaultReconcileEvery = 10 * time.Minute

var (
	instrumentation = "github.com/whistle-dispatch/whistle/services/escalation"
	tracer          = otel.Tracer(instrumentation)
	meter           = otel.Meter(instrumentation)
	breachCount     metric.Int64Counter
	breachLateness  metric.Float64Histogram
	openDeadlines   metric.Int64ObservableGauge
	watchEntries    metric.Int64Counter
	reconcileFound  metric.Int64Counter
	reconcilePasses metric.Int64Counter
	// The outcomes of a watch's entries, whose attribute sets are built once.
	sentEntry    = otelx.Attributes("outcome", "sent")
	skippedEntry = otelx.Attributes("outcome", "skipped")
)

func init() {
	breachCount, _ = meter.Int64Counter("whistle.breaches",
		metric.WithDescription("Breach events the escalation service appended, by kind (report-in, resolve), street and department."))
	breachLateness, _ = meter.Float64Histogram("whistle.breach.lateness", metric.WithUnit("s"),
		metric.WithDescription("How long after its deadline a breach was recorded, on the stream's clock, by kind and department."),
		metric.WithExplicitBucketBoundaries(lateBuckets...))
	openDeadlines, _ = meter.Int64ObservableGauge("whistle.deadlines.open",
		metric.WithDescription("Deadlines that are neither cleared nor breached yet."))
	watchEntries, _ = meter.Int64Counter("whistle.escalation.watch.entries",
		metric.WithDescription("Entries of breach feeds that breach watches read, by outcome: sent, or skipped (before the sequence asked for, repeated, or outside the watch's filter)."))
	reconcileFound, _ = meter.Int64Counter("whistle.escalation.reconcile.found",
		metric.WithDescription("Timers the reconciliation found wrong and mended, by mismatch: missing from the index, due too late there, of a state behind the stream that lost a write, or of an issue whose document was lost whole (missing, late, behind, lost); it should stay at zero."))
	reconcilePasses, _ = meter.Int64Counter("whistle.escalation.reconcile.passes",
		metric.WithDescription("Complete passes of the reconciliation of the timers with the issues' states."))
}

// lateBuckets are the bounds of whistle.breach.lateness, in seconds. A breach is normally
// recorded within a fraction of a second of its deadline (whistle bench measures it: a few hundred
// milliseconds at p99 on a loaded machine), so the buckets are fine below a second, where the
// SDK's default ones (0, 5, 10, 25, ...) would put every breach in the first; the coarse ones above
// show an escalation service that was down or far behind when the deadline passed.
var lateBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// Timers is the loop that fires due deadlines. Several replicas may run it; a lease lets one fire
// at a time, and the conditional append makes firing safe even when two do.
type Timers struct {
	log    *eventlog.Log
	store  *store.Store
	clock  clock.Clock
	lease  *store.Lease
	logger *slog.Logger
	people *People
	wake   chan struct{}
	// asleepUntil is the unix millisecond the loop sleeps until; math.MaxInt64 while it is awake,
	// so that a timer added while it looks is never missed.
	asleepUntil atomic.Int64
	// ReconcileEvery is how often the holder of the lease reconciles the timers; set it before Run.
	ReconcileEvery time.Duration
	// reconcileAt is when the next reconciliation is due; zero until the loop holds the lease
	// and has read when the last one ran. Only the loop's goroutine touches it.
	reconcileAt time.Time
	// reconciling is set while a reconciliation runs.
	reconciling atomic.Bool
	// troubled is set while Redis fails the loop, and makes the loop reconcile once it answers
	// again: a failover may have lost acknowledged writes. Only the loop's goroutine touches it.
	troubled bool
	// reconcileFailed is set by a reconciliation that failed, to be tried again as trouble.
	reconcileFailed atomic.Bool
}

// NewTimers returns the loop; people says whom reminders and chains tell. Connect Notify to the
// store, so that the loop learns of new timers.
func NewTimers(log *eventlog.Log, s *store.Store, c clock.Clock, lease *store.Lease, people *People, logger *slog.Logger) *Timers {
	t := &Timers{log: log, store: s, clock: c, lease: lease, people: people, logger: logger, wake: make(chan struct{}, 1),
		ReconcileEvery: DefaultReconcileEvery}
	t.asleepUntil.Store(math.MaxInt64)
	return t
}

// Notify wakes the loop when a timer at at comes due before the loop would wake on its own.
func (t *Timers) Notify(at time.Time) {
	if at.UnixMilli() < t.asleepUntil.Load() {
		select {
		case t.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// Run fires due timers until ctx ends, then gives the lease up.
func (t *Timers) Run(ctx context.Context) error {
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		n, err := t.store.OpenTimers(ctx)
		if err == nil {
			o.ObserveInt64(openDeadlines, n)
		}
		return err
	}, openDeadlines)
	if err != nil {
		return fmt.Errorf("escalation: gauge: %w", err)
	}
	defer func() { _ = reg.Unregister() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = t.lease.Release(ctx)
	}()

	// One sleep is pending at a time while nothing earlier is needed: a fake clock then counts
	// exactly one waiter per sleeping loop, and a real one keeps no stray timers.
	var tick <-chan time.Time
	var tickAt time.Time
	for {
		t.asleepUntil.Store(math.MaxInt64)
		next := t.step(ctx)
		if tick == nil || next.Before(tickAt) {
			tick, tickAt = t.clock.After(next.Sub(t.clock.Now())), next
		}
		t.asleepUntil.Store(tickAt.UnixMilli())
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			tick = nil
		case <-t.wake:
		}
	}
}

// step takes or renews the lease and, holding it, fires what is due; it returns when to look again.
func (t *Timers) step(ctx context.Context) time.Time {
	now := t.clock.Now()
	next := now.Add(LeaseCheck)
	held, err := t.lease.Hold(ctx)
	if err != nil || !held {
		t.warn(ctx, "lease", err)
		t.reconcileAt = time.Time{} // another replica may reconcile meanwhile: read when, on taking it back
		t.troubled = t.troubled || err != nil
		return next
	}
	if t.troubled || t.reconcileFailed.Swap(false) {
		t.troubled = false
		t.reconcileAt = now // Redis answers again after failing: reconcile now
	}
	t.maybeReconcile(ctx, now)
	lanes := t.fireLanes(ctx, now.Add(laneRun))
	if lanes.troubled {
		t.troubled = true // the due query reads every master: any one failing shows here
	}
	if !lanes.ok {
		return next // what failed stays due; it is tried again at the next lease check
	}
	if lanes.wait > 0 && now.Add(lanes.wait).Before(next) {
		next = now.Add(lanes.wait) // a deadline this clock saw pass that the stream's clock has yet to reach
	}
	if lanes.more {
		return t.clock.Now() // more are due: look again at once
	}
	earliest, ok, err := t.store.EarliestAfter(ctx, now)
	if err != nil {
		t.warn(ctx, "earliest timer", err)
		return next
	}
	if ok && earliest.At.Before(next) {
		next = earliest.At
	}
	return next
}

// maybeReconcile starts a reconciliation in the background when one is due and none runs; the
// loop goes on firing meanwhile. When it is due is kept in Redis, so that a replica taking the
// lease over neither repeats a fresh pass nor postpones a late one.
func (t *Timers) maybeReconcile(ctx context.Context, now time.Time) {
	if t.reconciling.Load() {
		return
	}
	if t.reconcileAt.IsZero() {
		last, err := t.store.LastReconciliation(ctx)
		if err != nil {
			t.warn(ctx, "reconcile", err)
			return
		}
		t.reconcileAt = last.At.Add(t.ReconcileEvery)
	}
	if now.Before(t.reconcileAt) {
		return
	}
	t.reconcileAt = now.Add(t.ReconcileEvery)
	t.reconciling.Store(true)
	go func() {
		// The pass is over before it is recorded: whoever reads the record may find the next
		// one due, and it must not be skipped as still running.
		found, err := t.reconcilePass(ctx)
		t.reconciling.Store(false)
		if err == nil { // a failure is counted, logged and retried by the loop (reconcileFailed)
			t.recordReconciliation(ctx, now, found)
		}
	}()
}

// Reconcile runs one pass of the reconciliation now, as the lease holder's scheduled passes do
// (see reconcilePass), whoever holds the lease: the passes only read, and repair with conditional
// writes. It returns how many timers the pass put back.
func (t *Timers) Reconcile(ctx context.Context) (int, error) {
	now := t.clock.Now()
	found, err := t.reconcilePass(ctx)
	if err == nil {
		t.recordReconciliation(ctx, now, found)
	}
	return found, err
}

// reconcilePass runs one pass of store.Reconcile, and counts and logs what it repaired; it returns
// how many timers it put back.
func (t *Timers) reconcilePass(ctx context.Context) (int, error) {
	start := t.clock.Now()
	found := 0
	err := t.store.Reconcile(ctx, t.log, func(r store.Repair) {
		found++
		reconcileFound.Add(ctx, 1, otelx.Attributes("mismatch", string(r.Mismatch)))
		t.logger.WarnContext(ctx, "escalation timers: reconciliation put a timer back", "timer", r.Timer.Name(),
			"mismatch", string(r.Mismatch), "due", r.Timer.At)
	})
	if err != nil {
		t.warn(ctx, "reconcile", err)
		t.reconcileFailed.Store(true)
		return found, err
	}
	reconcilePasses.Add(ctx, 1)
	for _, m := range []store.Mismatch{store.Missing, store.Late, store.Behind, store.Lost} {
		reconcileFound.Add(ctx, 0, otelx.Attributes("mismatch", string(m))) // a series from the first pass, for alerts on its increase
	}
	t.logger.DebugContext(ctx, "escalation timers: reconciled", "repaired", found, "took", t.clock.Now().Sub(start))
	return found, nil
}

// recordReconciliation keeps in Redis that a pass began at now and what it repaired, so that a
// replica taking the lease over neither repeats a fresh pass nor postpones a late one.
func (t *Timers) recordReconciliation(ctx context.Context, now time.Time, found int) {
	if err := t.store.SetLastReconciliation(ctx, store.Reconciliation{At: now, Repaired: found}); err != nil {
		t.warn(ctx, "reconcile", err)
	}
}

// warn logs a failure of the loop, which carries on; ctx ending is no failure.
func (t *Timers) warn(ctx context.Context, what string, err error) {
	if err != nil && ctx.Err() == nil {
		t.logger.WarnContext(ctx, "escalation timers: "+what, "err", err)
	}
}

// lanesRun is what the lanes came to: more says a lane stopped at the end of its run with more
// due, wait is the shortest wait until the stream's clock reaches a deadline that is not due on it
// yet, ok that every timer was handled, and troubled that Redis failed a due query.
type lanesRun struct {
	more, ok, troubled bool
	wait               time.Duration
}

// add takes in one lane's run.
func (r *lanesRun) add(lane lanesRun) {
	r.more = r.more || lane.more
	r.ok = r.ok && lane.ok
	r.troubled = r.troubled || lane.troubled
	if lane.wait > 0 && (r.wait == 0 || lane.wait < r.wait) {
		r.wait = lane.wait
	}
}

// fireLanes fires what is due in FireLanes lanes at once (see fireLane), each until nothing of its
// own is due or until.
func (t *Timers) fireLanes(ctx context.Context, until time.Time) lanesRun {
	var mu sync.Mutex
	var g sync.WaitGroup
	run := lanesRun{ok: true}
	for lane := range FireLanes {
		g.Go(func() {
			got := t.fireLane(ctx, lanePartitions(lane), until)
			mu.Lock()
			defer mu.Unlock()
			run.add(got)
		})
	}
	g.Wait()
	return run
}

// lanePartitions are the partitions whose timers shards a lane fires.
func lanePartitions(lane int) []int {
	var ps []int
	for p := lane; p < eventlog.Partitions; p += FireLanes {
		ps = append(ps, p)
	}
	return ps
}

// fireLane fires the due timers of the partitions' shards, a pass of up to DueBatch at a time,
// until none is due, until a pass leaves one to wait for the stream's clock or fails, or until.
// Whether a deadline has passed is judged on the stream's clock, read once a pass: this service's
// clock only says what to look at.
func (t *Timers) fireLane(ctx context.Context, partitions []int, until time.Time) lanesRun {
	for {
		due, more, err := t.store.DueIn(ctx, t.clock.Now(), DueBatch, partitions)
		if err != nil {
			t.warn(ctx, "due timers", err)
			return lanesRun{troubled: true}
		}
		if len(due) == 0 {
			return lanesRun{ok: true}
		}
		streamNow, err := t.log.Now(ctx)
		if err != nil {
			t.warn(ctx, "stream clock", err)
			return lanesRun{}
		}
		settled, wait, ok := t.firePass(ctx, due, streamNow, t.clock.Now())
		switch {
		case !ok || !more || settled < len(due):
			return lanesRun{ok: ok, wait: wait}
		case !t.clock.Now().Before(until):
			return lanesRun{more: true, ok: true, wait: wait}
		}
	}
}

// firePass fires a pass's due timers and then drops, in one round trip, the timers whose verdicts
// are in. Each issue's timers are fired in order (they append to the same issue, so at once they
// would only conflict). The first of an issue's timers that owes a breach is decided with the
// others' firsts in one DecideAll, whose appends the stream acknowledges together: in a storm that
// is nearly every timer, and a round trip each would cost more than the appends. The rest are
// fired issues in parallel, each a round trip to the stream. streamNow is the stream's clock, read
// at readAt on this service's. It returns how many it settled (fired, or found owing nothing), the
// shortest wait until the stream's clock reaches a deadline that is not due on it yet, and whether
// every timer was handled.
func (t *Timers) firePass(ctx context.Context, due []domain.Timer, streamNow, readAt time.Time) (settled int, wait time.Duration, ok bool) {
	byIssue := map[string][]domain.Timer{}
	ids := make([]string, 0, len(due))
	for _, tm := range due {
		if byIssue[tm.IssueID] == nil {
			ids = append(ids, tm.IssueID)
		}
		byIssue[tm.IssueID] = append(byIssue[tm.IssueID], tm)
	}
	if err := t.store.Prefetch(ctx, ids); err != nil {
		t.warn(ctx, "prefetch", err) // each fire then reads its issue itself
	}
	var mu sync.Mutex
	var drops []domain.Timer
	ok = true
	// count takes in what firing a timer came to (see Timers.settle); it reports whether the
	// issue's next timers may be fired.
	count := func(tm domain.Timer, w time.Duration, drop bool, err error) bool {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.warn(ctx, "fire "+tm.Name(), err)
			ok = false
			return false
		}
		if w > 0 && (wait == 0 || w < wait) {
			wait = w
		} else if w == 0 {
			settled++
		}
		if drop {
			drops = append(drops, tm)
		}
		return true
	}

	var firsts []*firing
	for _, id := range ids {
		if tm := byIssue[id][0]; tm.Step == domain.BreachStep {
			firsts = append(firsts, t.firing(tm, streamNow))
		}
	}
	decisions := make([]eventlog.Decision, len(firsts))
	for i, f := range firsts {
		decisions[i] = eventlog.Decision{IssueID: f.timer.IssueID, Decide: f.decide}
	}
	for i, out := range t.log.DecideAll(ctx, t.store, decisions) {
		f := firsts[i]
		id := f.timer.IssueID
		if out.Err == nil && f.unknown {
			continue // fired below, where a state behind the dispatch catches up first
		}
		w, drop, err := t.settle(ctx, f, out.Record, out.Err, streamNow, readAt)
		if count(f.timer, w, drop, err) {
			byIssue[id] = byIssue[id][1:]
		} else {
			delete(byIssue, id) // the issue's later timers wait for its earlier one
		}
	}

	var g sync.WaitGroup
	limit := make(chan struct{}, FireParallelism)
	for _, timers := range byIssue {
		if len(timers) == 0 {
			continue
		}
		limit <- struct{}{}
		g.Go(func() {
			defer func() { <-limit }()
			for _, tm := range timers {
				if w, drop, err := t.fire(ctx, tm, streamNow, readAt); !count(tm, w, drop, err) {
					return
				}
			}
		})
	}
	g.Wait()
	// A verdict that is in stays true (see store.DropTimer), so the timers are dropped together
	// once the batch is done, even when another fire failed. A drop that fails leaves its timer
	// due: it fires again and finds nothing owed.
	if err := t.store.DropTimers(ctx, drops); err != nil {
		t.warn(ctx, "drop timers", err)
		ok = false
	}
	return settled, wait, ok
}

// fire appends what one due timer owes, if the issue's state owes it on the stream's clock (see
// owed), and says whether the timer may be dropped (see settle). A state that does not know the
// assignment yet has not seen the dispatch that made the timer: fire takes the stream's events
// into it and decides again (see catchUp). The append is conditional on the sequence the decision
// read, so an event that clears the deadline and reached the stream first makes it fail: Decide
// then catches up and decides again on the cleared state, which owes a breach only if the clearing
// event was stored after the deadline. No catch-up is needed before deciding: a stale state can
// only hold a deadline open that the stream has cleared, never the reverse, and that costs one
// refused append instead of a stream read on every fire.
func (t *Timers) fire(ctx context.Context, tm domain.Timer, streamNow, readAt time.Time) (wait time.Duration, drop bool, err error) {
	ctx, span := tracer.Start(ctx, "app.Timers.fire")
	defer span.End()
	traceTimer(span, tm)
	f := t.firing(tm, streamNow)
	rec, err := t.decide(ctx, f)
	if err == nil && f.unknown {
		if !t.catchUp(ctx, tm.IssueID) {
			return LeaseCheck, false, nil
		}
		f = t.firing(tm, streamNow)
		rec, err = t.decide(ctx, f)
	}
	return t.settle(ctx, f, rec, err, streamNow, readAt)
}

// settle reads what deciding on a due timer came to: rec, the event appended (nil for none), or
// err. It counts a breach, and says whether the timer may be dropped: once the state says its
// verdict (store.DropTimer says why that verdict may drop it without a transaction on the
// state). When the stream's clock has not reached the timer yet, it returns how long until it does
// and keeps the timer.
func (t *Timers) settle(ctx context.Context, f *firing, rec *eventlog.Record, err error, streamNow, readAt time.Time) (wait time.Duration, drop bool, _ error) {
	tm := f.timer
	if errors.Is(err, eventlog.ErrQuarantined) {
		return 0, true, nil // a quarantined issue owes nothing until it is mended
	}
	if err != nil {
		return 0, false, err
	}
	if f.unknown {
		// Even the stream's events do not dispatch the unit yet: the timer was written by a fold
		// of events this store cannot see yet, so it is looked at again at the next lease check.
		return LeaseCheck, false, nil
	}
	if b := recordedBreach(rec); b != nil {
		breachCount.Add(ctx, 1, otelx.Attributes("kind", string(tm.Kind), "street", f.street, "department", b.GetDepartmentId()))
		// The stream stored the breach about now on its clock: the batch's reading of it plus the
		// time this service's clock ran since (reading the stored time back would cost a request
		// to the stream per breach; the stored breach itself keeps the exact time).
		firedAt := streamNow.Add(t.clock.Now().Sub(readAt))
		breachLateness.Record(ctx, firedAt.Sub(b.GetDeadline().AsTime()).Seconds(),
			otelx.Attributes("kind", string(tm.Kind), "department", b.GetDepartmentId()))
	}
	if f.wait > 0 {
		return f.wait, false, nil
	}
	if tm.Step != domain.BreachStep {
		// A reminder or a chain step is followed by the clock's next one, which may come due at
		// the same instant (a level with no wait): that timer has this one's name and score, so
		// it is kept while the state still owes it. Decide waited for the fold of the step, so
		// the state the store holds has it.
		st, err := t.store.Latest(ctx, tm.IssueID)
		if err != nil {
			return 0, false, err
		}
		for _, next := range st.Timers() {
			if next.Name() == tm.Name() {
				return 0, false, nil
			}
		}
	}
	return 0, true, nil
}

// firing is one decision on a due timer, and what its last round learnt of the issue: its street
// (for the breach's count), how long until the stream's clock reaches the timer when it has not
// yet, and whether the state did not know the timer's assignment (unknown), when it decided
// nothing.
type firing struct {
	loop      *Timers
	timer     domain.Timer
	streamNow time.Time
	street    string
	wait      time.Duration
	unknown   bool
}

// firing starts a decision on the due timer tm at the stream's clock streamNow.
func (t *Timers) firing(tm domain.Timer, streamNow time.Time) *firing {
	return &firing{loop: t, timer: tm, streamNow: streamNow}
}

// decide appends, through Decide, what the due timer owes (see firing.decide), and returns the
// record it appended (nil for none).
func (t *Timers) decide(ctx context.Context, f *firing) (*eventlog.Record, error) {
	if f.timer.Step == domain.BreachStep {
		// A breach ends its clock's timers, and the loop drops the timer itself: it need not wait
		// for the fold, which in a storm would pace the firing by the folds. A reminder or a
		// chain step reads the state after it (its clock's next step), so it waits.
		ctx = eventlog.Unawaited(ctx)
	}
	return t.log.Decide(ctx, t.store, f.timer.IssueID, f.decide)
}

// decide is the event the due timer owes on the issue's state at the stream's clock, for Decide
// to append; nil for none.
func (f *firing) decide(ctx context.Context) (*whistlev1.Event, error) {
	tm := f.timer
	st, err := f.loop.store.Latest(ctx, tm.IssueID)
	if err != nil {
		return nil, err
	}
	f.street, f.wait = st.StreetID, 0
	if f.unknown = st.Assignments[tm.UnitID] == nil; f.unknown {
		return nil, nil
	}
	var ev *whistlev1.Event
	if ev, f.wait = f.loop.owed(st, tm, f.streamNow); ev == nil {
		return nil, nil
	}
	ev.IssueId, ev.OccurredAt, ev.PrevSeq = tm.IssueID, timestamppb.New(f.loop.clock.Now()), st.LastSeq
	ev.Actor, ev.CorrelationId = &whistlev1.Actor{Subject: ServiceName, Role: "service"}, st.CorrelationID
	return ev, nil
}

// catchUp takes the stream's events of an issue into the store, for a fire whose state did not
// know the timer's assignment: the store's state is older than the dispatch that made the timer.
// Its fold is on its way (on a cluster the timer is written to another master than the document,
// at the same time), or another replica folded it while this store kept an older state, or its
// write was lost (a Redis failover) and none is coming. The writes are conditional like the
// fold's, so racing the consumer costs nothing. It reports whether the store caught up.
func (t *Timers) catchUp(ctx context.Context, issueID string) bool {
	last, err := t.log.Last(ctx, issueID)
	if err == nil {
		_, err = t.log.CatchupTo(ctx, t.store, issueID, last)
	}
	t.warn(ctx, "catch up "+issueID, err)
	return err == nil
}

// owed is the event (its payload only) a due timer owes on the issue's state at the stream's
// clock: the clock's breach, its reminder, or the next step of its chain. Without one it returns
// how long until the stream's clock reaches the timer, or zero when the timer owes nothing more.
func (t *Timers) owed(st *domain.Issue, tm domain.Timer, streamNow time.Time) (*whistlev1.Event, time.Duration) {
	a := st.Assignments[tm.UnitID]
	kind := assignmentpb.DeadlineKindProto(tm.Kind)
	switch tm.Step {
	case domain.RemindStep:
		percent, wait := a.OwedReminder(tm.UnitID, tm.Kind, streamNow, t.store.Calendar())
		if percent == 0 {
			return nil, wait
		}
		person := t.people.Target(sla.DutyOfficer, tm.UnitID, a.OfficerID, st.StreetID, streamNow)
		return &whistlev1.Event{Payload: &whistlev1.Event_Reminded{Reminded: &whistlev1.DeadlineReminded{
			DepartmentId: a.Department(tm.UnitID), UnitId: tm.UnitID, Kind: kind,
			Deadline: timestamppb.New(a.Machine(tm.UnitID).Deadline(tm.Kind)), Percent: uint32(percent), PersonId: person,
		}}}, 0
	case domain.EscalateStep:
		next, ok := a.NextStep(tm.UnitID, tm.Kind, t.store.Calendar())
		if !ok {
			return nil, 0
		}
		if streamNow.Before(next.At) {
			return nil, next.At.Sub(streamNow)
		}
		step := &whistlev1.BreachEscalated{DepartmentId: a.Department(tm.UnitID), UnitId: tm.UnitID, Kind: kind,
			Deadline: timestamppb.New(a.Machine(tm.UnitID).Deadline(tm.Kind))}
		// A level whose target is nobody is passed over at once, to the next one that tells
		// somebody; when none is left, the step records that the chain ends with nobody told.
		level, repeat := next.Level, next.Repeat
		for ; level <= a.Levels(); level, repeat = level+1, 0 {
			target := a.Target(level)
			step.Level, step.Repeat, step.Target = uint32(level), uint32(repeat), assignmentpb.TargetProto(target)
			if step.PersonId = t.people.Target(target, tm.UnitID, a.OfficerID, st.StreetID, streamNow); step.PersonId != "" {
				break
			}
			step.Skipped = append(step.Skipped, uint32(level))
		}
		if step.PersonId == "" {
			step.Level, step.Repeat = uint32(a.Levels()), uint32(a.LastRepeat(a.Levels()))
		}
		if areaOf(a.Target(int(step.Level))) {
			step.AreaId = st.StreetID
			if a.Target(int(step.Level)) == sla.CitySupervisor {
				step.AreaId = catalog.CityScope
			}
		}
		return &whistlev1.Event{Payload: &whistlev1.Event_Escalated{Escalated: step}}, 0
	}
	owed, ok, wait := st.Owes(tm.UnitID, tm.Kind, streamNow)
	if !ok {
		return nil, wait
	}
	breach := &whistlev1.DeadlineBreached{
		DepartmentId: a.Department(tm.UnitID),
		UnitId:       tm.UnitID,
		Kind:         kind,
		Deadline:     timestamppb.New(owed.Deadline),
	}
	if owed.Cleared != nil {
		breach.ClearedSeq, breach.ClearedAt = owed.Cleared.Seq, timestamppb.New(owed.Cleared.At)
	}
	return &whistlev1.Event{Payload: &whistlev1.Event_Breached{Breached: breach}}, 0
}

// recordedBreach is the breach a fire recorded; nil when it recorded none.
func recordedBreach(rec *eventlog.Record) *whistlev1.DeadlineBreached {
	if rec == nil {
		return nil
	}
	return rec.Event.GetBreached()
}

// areaOf reports whether a target is an area's supervisor.
func areaOf(t sla.Target) bool { return t == sla.StreetSupervisor || t == sla.CitySupervisor }

// traceTimer names a timer on a span that is recorded. A storm fires thousands a second, each
// on a span of its own that, unsampled, records nothing: its attributes would be built for
// nobody.
func traceTimer(span trace.Span, tm domain.Timer) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("whistle.issue", tm.IssueID),
			attribute.String("whistle.unit", tm.UnitID), attribute.String("whistle.deadline", string(tm.Kind)))
	}
}
