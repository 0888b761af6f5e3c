package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/grpcx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// lifecycleTimeout is how long one lifecycle may take before the run is declared stuck.
const lifecycleTimeout = 30 * time.Second

// tokenTTL outlives any run.
const tokenTTL = 2 * time.Hour

// pair is a grid and a category that an issue is raised with.
type pair struct{ grid, category string }

// lifecycle is what the run knows of one issue. The raiser sets start (when the raise began, or
// in the open loop when it was scheduled to), the lead department's officer sets inbox, and done
// closes when every department resolved it, at finished, or when an officer failed on it, with err.
type lifecycle struct {
	start, inbox, finished time.Time
	seen                   []string // departments whose officer took it up, for a stuck run's report
	resolved               int
	err                    error
	done                   chan struct{}
}

// tracker joins what raisers and officers see of each issue. Either side may see an issue
// first: a fast pipeline can put it in an inbox before RaiseIssue has returned.
type tracker struct {
	plans map[pair][]string // departments each pair is routed to; read-only during the run

	mu     sync.Mutex // guards issues and every lifecycle in it
	issues map[string]*lifecycle
}

// newTracker returns a tracker of issues routed as plans say.
func newTracker(plans map[pair][]string) *tracker {
	return &tracker{plans: plans, issues: map[string]*lifecycle{}}
}

// get returns the issue's lifecycle, creating it on first sight. Lock should be held.
func (t *tracker) get(id string) *lifecycle {
	lc, ok := t.issues[id]
	if !ok {
		lc = &lifecycle{done: make(chan struct{})}
		t.issues[id] = lc
	}
	return lc
}

// raised records when the raise of an issue began (or was due to) and returns the channel closed
// at its end.
func (t *tracker) raised(id string, start time.Time) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	lc := t.get(id)
	lc.start = start
	return lc.done
}

// arrived records that dept took the issue up from its inbox, and when, for the lead.
func (t *tracker) arrived(id, dept string, lead bool, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lc := t.get(id)
	lc.seen = append(lc.seen, dept)
	if lead {
		lc.inbox = at
	}
}

// stuck says how far a lifecycle that ran out of time got.
func (t *tracker) stuck(id string, p pair) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	lc := t.get(id)
	return fmt.Errorf("bench: case %s (%s, %s) not resolved by every department within %s: routed to %v, seen in the inbox of %v, %d resolved",
		id, p.grid, p.category, lifecycleTimeout, t.plans[p], lc.seen, lc.resolved)
}

// resolvedBy counts one department's resolve, and ends the lifecycle at the last one.
func (t *tracker) resolvedBy(id string, p pair, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lc := t.get(id)
	if lc.resolved++; lc.resolved == len(t.plans[p]) && lc.finished.IsZero() && lc.err == nil {
		lc.finished = at
		close(lc.done)
	}
}

// failed ends the lifecycle with an officer's failure, unless it had ended already.
func (t *tracker) failed(id string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lc := t.get(id)
	if lc.finished.IsZero() && lc.err == nil {
		lc.err = err
		close(lc.done)
	}
}

// state returns what is known of an issue now: when its lead department's assignment showed in
// the inbox and when every department had resolved it (each zero if not yet), and the failure
// that ended it, if one did.
func (t *tracker) state(id string) (inbox, finished time.Time, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lc := t.get(id)
	return lc.inbox, lc.finished, lc.err
}

// latency is the raise-to-inbox time of a finished issue, or an error if its lead
// department was never seen (a plan without a lead).
func (t *tracker) latency(id string) (time.Duration, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lc := t.issues[id]
	if lc.inbox.IsZero() {
		return 0, fmt.Errorf("bench: case %s was resolved without a lead department's assignment", id)
	}
	return lc.inbox.Sub(lc.start), nil
}

// session is what the lifecycle runs share: the pairs that route to a lead department, a grid
// worker per grid to raise issues, and a duty officer per department who watches its inbox and
// acknowledges and resolves every issue of the session. Its context ends when the session closes,
// or with the cause when a watch fails, which ends every run.
type session struct {
	tr     *tracker
	pairs  []pair
	raiser *raiser

	ctx      context.Context
	cancel   context.CancelCauseFunc
	officers sync.WaitGroup
	// deliveries counts the messages the officers' WatchInbox streams received, every one of
	// them: the initial inbox, other issues' changes and the session's own.
	deliveries atomic.Int64
}

// startSession connects the raisers and officers and warms up: one lifecycle reaching each
// department proves every officer's watch is live before anything is timed, and opens the
// connections. On failure it closes what it started.
func startSession(ctx context.Context, tgt target) (_ *session, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	s := &session{ctx: ctx, cancel: cancel}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	plans, err := routablePairs(ctx, tgt)
	if err != nil {
		return nil, err
	}
	s.tr = newTracker(plans)
	s.pairs = slices.SortedFunc(maps.Keys(plans), func(a, b pair) int {
		return strings.Compare(a.grid+"/"+a.category, b.grid+"/"+b.category)
	})
	if s.raiser, err = newRaiser(tgt, s.pairs, run); err != nil {
		return nil, err
	}
	for _, dept := range departments(plans) {
		o, err := newOfficer(tgt, dept, s.tr, run, &s.deliveries)
		if err != nil {
			return nil, err
		}
		s.officers.Go(func() { o.watch(ctx, cancel) })
	}

	var warm sync.WaitGroup
	for i, p := range warmUp(s.pairs, plans) {
		warm.Go(func() {
			if _, err := s.raiser.lifecycle(ctx, s.tr, p, fmt.Sprintf("warm-%d", i)); err != nil {
				cancel(err)
			}
		})
	}
	warm.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// close ends the officers' watches and closes every connection of the session.
func (s *session) close() {
	s.cancel(nil)
	s.officers.Wait()
	if s.raiser != nil {
		s.raiser.close()
	}
}

// runClosedLoop drives cfg.N lifecycles, cfg.Concurrency at once, each caller raising its next
// issue when the last one was resolved, and records them in res, with what they cost as pr reads
// it from the moment the system is idle before the first raise until it is idle again after the
// last resolve.
func runClosedLoop(s *session, cfg Config, pr *probe, log io.Writer, res *Result) error {
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	settleOrSay(ctx, pr, log)
	before := pr.read(ctx, false)

	ids := make([]string, cfg.N)
	var next atomic.Int64
	var workers sync.WaitGroup
	start := time.Now()
	for range cfg.Concurrency {
		workers.Go(func() {
			for i := int(next.Add(1)) - 1; i < cfg.N && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				id, err := s.raiser.lifecycle(ctx, s.tr, s.pairs[i%len(s.pairs)], strconv.Itoa(i))
				if err != nil {
					cancel(err)
					return
				}
				ids[i] = id
			}
		})
	}
	workers.Wait()
	res.Wall = time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return err
	}
	settleOrSay(ctx, pr, log)
	after := pr.read(ctx, true)
	res.Closed = costOf(before, after, len(ids), pr.local)
	if before.events.missing == "" && after.events.missing == "" {
		res.ClosedEvents = [2]uint64{uint64(before.events.n), uint64(after.events.n)}
	}
	for _, id := range ids {
		d, err := s.tr.latency(id)
		if err != nil {
			return err
		}
		res.Inbox = append(res.Inbox, d)
	}
	res.Completed = len(ids)
	if from, to := res.ClosedEvents[0], res.ClosedEvents[1]; to > from {
		// The bench's clock is the stream's only when the NATS server runs in this process.
		stages, untimed, err := timeStages(ctx, pr.js, from, to, ids, s.tr, pr.local)
		if err != nil {
			return err
		}
		res.Stages, res.StagesUntimed = stages, untimed
	} else {
		res.StagesMissing = "the stream's last sequence was not read before and after the closed loop"
	}
	return nil
}

// settleOrSay waits for the services to catch up with the stream, and says so on log when they
// do not, or when the bench cannot tell; the run goes on either way.
func settleOrSay(ctx context.Context, pr *probe, log io.Writer) {
	if pr.js == nil {
		return
	}
	if err := settle(ctx, pr.js); err != nil && ctx.Err() == nil {
		fmt.Fprintf(log, "bench: measuring without waiting for the services to catch up: %v\n", err)
	}
}

// routablePairs asks routing, as a city dispatcher, where every grid and category would go,
// and keeps the pairs that a rule routes to a lead department, with all their departments.
func routablePairs(ctx context.Context, tgt target) (map[pair][]string, error) {
	conn, err := dial(tgt, authx.Principal{Subject: "bench-dispatcher", Role: authx.RoleDispatcher, Scope: authx.CityScope})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	routing := whistlev1.NewRoutingServiceClient(conn)
	areas, err := routing.ListAreas(ctx, &whistlev1.ListAreasRequest{})
	if err != nil {
		return nil, fmt.Errorf("bench: list areas: %w", err)
	}
	cats, err := routing.ListCategories(ctx, &whistlev1.ListCategoriesRequest{})
	if err != nil {
		return nil, fmt.Errorf("bench: list categories: %w", err)
	}
	plans := map[pair][]string{}
	for _, a := range areas.GetAreas() {
		if a.GetLevel() != "grid" {
			continue
		}
		for _, k := range cats.GetCategories() {
			route, err := routing.ExplainRoute(ctx, &whistlev1.ExplainRouteRequest{GridId: a.GetId(), CategoryId: k.GetId()})
			if err != nil {
				return nil, fmt.Errorf("bench: explain route: %w", err)
			}
			var depts []string
			lead := false
			for _, pa := range route.GetAssignments() {
				depts = append(depts, pa.GetUnitId())
				lead = lead || pa.GetRole() == whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD
			}
			// Only a pair routed to a lead department has a raise → inbox time to measure.
			if route.GetMatched() && lead {
				plans[pair{a.GetId(), k.GetId()}] = depts
			}
		}
	}
	if len(plans) == 0 {
		return nil, errors.New("bench: no routing rule sends any grid and category to a lead department, so no lifecycle could be measured")
	}
	return plans, nil
}

// departments is every department some pair is routed to, sorted.
func departments(plans map[pair][]string) []string {
	var all []string
	for _, depts := range plans {
		all = append(all, depts...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// warmUp picks pairs, in order, until every department is reached by one of them.
func warmUp(pairs []pair, plans map[pair][]string) []pair {
	reached := map[string]bool{}
	var picked []pair
	for _, p := range pairs {
		if !slices.ContainsFunc(plans[p], func(d string) bool { return !reached[d] }) {
			continue
		}
		picked = append(picked, p)
		for _, d := range plans[p] {
			reached[d] = true
		}
	}
	return picked
}

// dial connects to the target as p.
func dial(tgt target, p authx.Principal) (*grpc.ClientConn, error) {
	tok, err := tgt.auth.Mint(p, tokenTTL)
	if err != nil {
		return nil, fmt.Errorf("bench: mint a token for %s: %w", p.Subject, err)
	}
	conn, err := grpcx.Dial(tgt.addr, tok)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return conn, nil
}

// issueText is what a benchmark issue says; its prefix marks the run, so that officers of a
// shared system leave other issues alone.
func issueText(run string, i any) string {
	return fmt.Sprintf("%s #%v: loud construction work after 22:00 behind the block", runMark(run), i)
}

// runMark is the prefix of every issue text of a run.
func runMark(run string) string { return "bench " + run }

// raiser raises issues as each grid's grid worker.
type raiser struct {
	run   string
	conns []*grpc.ClientConn
	grids map[string]whistlev1.IntakeServiceClient
}

// newRaiser connects one grid worker per grid that pairs use.
func newRaiser(tgt target, pairs []pair, run string) (*raiser, error) {
	r := &raiser{run: run, grids: map[string]whistlev1.IntakeServiceClient{}}
	for _, p := range pairs {
		if r.grids[p.grid] != nil {
			continue
		}
		conn, err := dial(tgt, authx.Principal{Subject: "bench-worker-" + p.grid, Role: authx.RoleGridWorker, Scope: p.grid})
		if err != nil {
			r.close()
			return nil, err
		}
		r.conns = append(r.conns, conn)
		r.grids[p.grid] = whistlev1.NewIntakeServiceClient(conn)
	}
	return r, nil
}

// close closes the raiser's connections.
func (r *raiser) close() {
	for _, c := range r.conns {
		c.Close()
	}
}

// raise raises the n-th issue of the run in pair p and returns its case number.
func (r *raiser) raise(ctx context.Context, p pair, n string) (string, error) {
	resp, err := r.grids[p.grid].RaiseIssue(ctx, &whistlev1.RaiseIssueRequest{
		RequestId:  "bench-" + r.run + "-" + n,
		GridId:     p.grid,
		CategoryId: p.category,
		Urgency:    whistlev1.Urgency_URGENCY_NORMAL,
		Text:       issueText(r.run, n),
	})
	if err != nil {
		return "", fmt.Errorf("bench: raise in %s: %w", p.grid, err)
	}
	return resp.GetIssue().GetId(), nil
}

// lifecycle raises one issue, waits until every department summoned has resolved it, and
// verifies it on site, which closes it, for at most lifecycleTimeout, the raise included.
func (r *raiser) lifecycle(ctx context.Context, tr *tracker, p pair, n string) (string, error) {
	lctx, cancel := context.WithTimeout(ctx, lifecycleTimeout)
	defer cancel()
	start := time.Now()
	id, err := r.raise(lctx, p, n)
	if err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx) // the run ended first; its cause is the story
		}
		return "", err
	}
	select {
	case <-tr.raised(id, start):
		if _, _, err := tr.state(id); err != nil {
			return "", err
		}
		// The grid's worker verifies the result on site, which closes the issue.
		err := retry(lctx, func() error {
			_, err := r.grids[p.grid].VerifyIssue(lctx, &whistlev1.VerifyIssueRequest{IssueId: id, Passed: true})
			return err
		})
		if err != nil {
			return "", fmt.Errorf("bench: verify %s: %w", id, err)
		}
		return id, nil
	case <-lctx.Done():
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", tr.stuck(id, p)
	}
}

// officer is a simulated duty officer: it watches its department's inbox and reports in,
// then resolves, each new assignment of the run.
type officer struct {
	dept   string
	run    string
	conn   *grpc.ClientConn
	desk   whistlev1.DepartmentServiceClient
	tr     *tracker
	seen   map[string]bool // issues already taken up; touched by watch only
	active sync.WaitGroup  // assignments being worked
	// received counts every message the inbox stream delivered; shared by a session's officers.
	received *atomic.Int64
}

// newOfficer connects an officer of dept.
func newOfficer(tgt target, dept string, tr *tracker, run string, received *atomic.Int64) (*officer, error) {
	conn, err := dial(tgt, authx.Principal{Subject: roster.SampleOfficer(dept), Role: authx.RoleOfficer, Scope: dept})
	if err != nil {
		return nil, err
	}
	return &officer{dept: dept, run: run, conn: conn, desk: whistlev1.NewDepartmentServiceClient(conn), tr: tr,
		seen: map[string]bool{}, received: received}, nil
}

// watch follows the inbox until ctx ends, working each newly dispatched assignment in a
// goroutine of its own so that the stream is read (and arrivals timed) without delay. A
// failure of the stream ends the whole session through fail; a failure to work an assignment
// ends that issue's lifecycle, which the closed loop then fails on and the open loop counts.
func (o *officer) watch(ctx context.Context, fail context.CancelCauseFunc) {
	defer o.conn.Close()
	defer o.active.Wait()
	stream, err := o.desk.WatchInbox(ctx, &whistlev1.WatchInboxRequest{UnitId: o.dept})
	if err != nil {
		fail(fmt.Errorf("bench: %s watches its inbox: %w", o.dept, err))
		return
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil {
				fail(fmt.Errorf("bench: %s inbox stream: %w", o.dept, err))
			}
			return
		}
		at := time.Now()
		o.received.Add(1)
		item := resp.GetItem()
		a := item.GetAssignment()
		if !strings.HasPrefix(item.GetText(), runMark(o.run)) || a.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED || o.seen[item.GetIssueId()] {
			continue
		}
		o.seen[item.GetIssueId()] = true
		o.tr.arrived(item.GetIssueId(), o.dept, a.GetRole() == whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, at)
		o.active.Go(func() {
			if err := o.work(ctx, item); err != nil {
				o.tr.failed(item.GetIssueId(), err)
			}
		})
	}
}

// work reports in for an assignment and resolves it.
func (o *officer) work(ctx context.Context, item *whistlev1.InboxItem) error {
	id := item.GetIssueId()
	if err := retry(ctx, func() error {
		_, err := o.desk.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: id, UnitId: o.dept})
		return err
	}); err != nil {
		return fmt.Errorf("bench: %s acknowledges %s: %w", o.dept, id, err)
	}
	if err := retry(ctx, func() error {
		_, err := o.desk.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: id, UnitId: o.dept, Note: "Site inspected; work stopped and the contractor warned."})
		return err
	}); err != nil {
		return fmt.Errorf("bench: %s resolves %s: %w", o.dept, id, err)
	}
	o.tr.resolvedBy(id, pair{item.GetGridId(), item.GetCategoryId()}, time.Now())
	return nil
}

// retry calls fn again when the server answers Aborted, which it does when concurrent
// writes on one issue kept conflicting; any other answer is final.
func retry(ctx context.Context, fn func() error) error {
	const attempts = 5
	var err error
	for i := range attempts {
		if err = fn(); status.Code(err) != codes.Aborted {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 5 * time.Millisecond):
		}
	}
	return err
}
