package department

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// delivery is one item a watch received, as the test judges it.
type delivery struct {
	issue    string
	status   whistlev1.AssignmentStatus
	dept     string // the department whose assignment the item shows
	seq      uint64
	position string
	// quarantinedAt is the sequence of the event that quarantined the issue, 0 when none did.
	quarantinedAt uint64
}

// inboxWatch is one open WatchInbox, recording what it receives until the test ends or it is cut.
type inboxWatch struct {
	dept string
	cut  context.CancelFunc
	done chan struct{}

	mu        sync.Mutex
	bookmark  string
	items     []delivery // changes, after the bookmark
	snapshot  []delivery // the inbox as it stood, before the bookmark
	endedWith error
}

// watchInbox opens a watch of dept's inbox as its officer, after the position after ("" for
// the inbox as it stands), and waits until it has sent its bookmark when it begins fresh.
func (h *harness) watchInbox(dept, after string) *inboxWatch {
	h.T.Helper()
	ctx, cancel := context.WithCancel(h.T.Context())
	w := &inboxWatch{dept: dept, cut: cancel, done: make(chan struct{})}
	stream, err := h.client(officer(dept, 1)).WatchInbox(ctx, &whistlev1.WatchInboxRequest{After: after})
	if err != nil {
		h.T.Fatal(err)
	}
	go func() {
		defer close(w.done)
		for {
			resp, err := stream.Recv()
			w.mu.Lock()
			if err != nil {
				w.endedWith = err
				w.mu.Unlock()
				return
			}
			it := resp.GetItem()
			d := delivery{issue: it.GetIssueId(), status: it.GetAssignment().GetStatus(), dept: it.GetAssignment().GetDepartmentId(),
				seq: it.GetSeq(), position: resp.GetPosition(), quarantinedAt: it.GetQuarantine().GetSeq()}
			switch {
			case it == nil:
				w.bookmark = resp.GetPosition()
			case resp.GetPosition() == "":
				w.snapshot = append(w.snapshot, d)
			default:
				w.items = append(w.items, d)
			}
			w.mu.Unlock()
		}
	}()
	h.T.Cleanup(func() { cancel(); <-w.done })
	if after == "" {
		wait.For(h.T, 10*time.Second, 5*time.Millisecond, func() error {
			if w.lastPosition() == "" {
				return fmt.Errorf("the watch of %s has sent no bookmark (ended with %v)", dept, w.err())
			}
			return nil
		})
	}
	return w
}

// stop cuts the watch, as a dropped connection does, and returns what it received.
func (w *inboxWatch) stop() []delivery {
	w.cut()
	<-w.done
	return w.received()
}

func (w *inboxWatch) received() []delivery {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.items)
}

func (w *inboxWatch) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.endedWith
}

// lastPosition is the position a client resumes after: the last change's, or the bookmark's.
func (w *inboxWatch) lastPosition() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.items); n > 0 {
		return w.items[n-1].position
	}
	return w.bookmark
}

// waitFor waits until the watch has received issue at status.
func (w *inboxWatch) waitFor(t *testing.T, issue string, st whistlev1.AssignmentStatus) {
	t.Helper()
	wait.For(t, 20*time.Second, 5*time.Millisecond, func() error {
		for _, d := range w.received() {
			if d.issue == issue && d.status == st {
				return nil
			}
		}
		return fmt.Errorf("the watch of %s has not received %s %s (ended with %v): %v", w.dept, issue, st, w.err(), w.received())
	})
}

const (
	dispatched   = whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED
	acknowledged = whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED
	resolved     = whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED
)

// lifecycles runs n joint lifecycles led by each department, all departments at once: each issue
// is dispatched to its department (lead) and the next one (assisting), and each reports in and
// resolves its part through the API. Before each step it waits until every watch of the
// departments the previous step changed has shown it, so that each change is its own delivery.
// It returns each department's issues, its own and those it assists on.
func (h *harness) lifecycles(phase string, depts []string, n int, watches map[string][]*inboxWatch) map[string][]string {
	h.T.Helper()
	issues := map[string][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, lead := range depts {
		assisting := depts[(i+1)%len(depts)]
		wg.Go(func() {
			for k := range n {
				id := h.dispatch(fmt.Sprintf("%s-%s-%d", phase, lead, k), grids[(i+k)%len(grids)], lead, assisting)
				mu.Lock()
				issues[lead] = append(issues[lead], id)
				issues[assisting] = append(issues[assisting], id)
				mu.Unlock()
				for _, d := range []string{lead, assisting} {
					for _, w := range watches[d] {
						w.waitFor(h.T, id, dispatched)
					}
				}
				for _, step := range []struct {
					dept string
					want whistlev1.AssignmentStatus
				}{{lead, acknowledged}, {assisting, acknowledged}, {lead, resolved}, {assisting, resolved}} {
					c := h.client(officer(step.dept, 1))
					var err error
					if step.want == acknowledged {
						_, err = c.Acknowledge(h.T.Context(), &whistlev1.AcknowledgeRequest{IssueId: id})
					} else {
						_, err = c.Resolve(h.T.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "done"})
					}
					if err != nil {
						h.T.Errorf("%s %s: %v", step.dept, id, err)
						return
					}
					for _, w := range watches[step.dept] {
						w.waitFor(h.T, id, step.want)
					}
				}
			}
		})
	}
	wg.Wait()
	return issues
}

// grids are where the lifecycles' issues sit.
var grids = []string{"xinhua-taoyuan-01", "xinhua-hebin-02", "dongfeng-jinqiao-01", "dongfeng-yuanlin-02", "hexi-binjiang-01"}

// checkDeliveries checks that a watch received exactly each change to its department's assignment
// on its issues, in order, once: dispatched, acknowledged, resolved for each issue, and nothing else.
func checkDeliveries(t *testing.T, w *inboxWatch, issues []string) {
	t.Helper()
	byIssue := map[string][]whistlev1.AssignmentStatus{}
	for _, d := range w.received() {
		if d.dept != w.dept || !slices.Contains(issues, d.issue) {
			t.Errorf("the watch of %s received %s showing %s's assignment; it is not one of its department's changes", w.dept, d.issue, d.dept)
		}
		byIssue[d.issue] = append(byIssue[d.issue], d.status)
	}
	for _, id := range issues {
		if got := byIssue[id]; !slices.Equal(got, []whistlev1.AssignmentStatus{dispatched, acknowledged, resolved}) {
			t.Errorf("the watch of %s received %s as %v; want each change once: dispatched, acknowledged, resolved", w.dept, id, got)
		}
	}
}

func TestFiftyInboxWatchesEachReceiveEveryChangeOfTheirDepartmentOnceAndReadNoOtherDepartmentsFeed(t *testing.T) {
	t.Parallel()
	h := start(t)
	var depts []string
	for _, d := range h.Deps.Catalog.Departments()[:10] {
		depts = append(depts, d.ID)
	}
	const lifecycles = 2 // led by each department, and as many assisted
	const changes = 2 * lifecycles * 3

	// One watch per department, then five: each watch reads its own department's changes and no
	// other's, however many watches other departments have.
	for _, perDept := range []int{1, 5} {
		t.Run(fmt.Sprintf("%d watches per department", perDept), func(t *testing.T) {
			readBefore := map[string]uint64{}
			watches := map[string][]*inboxWatch{}
			for _, d := range depts {
				readBefore[d] = h.svc.app.FeedEntriesRead(d)
				for range perDept {
					watches[d] = append(watches[d], h.watchInbox(d, ""))
				}
			}
			issues := h.lifecycles(fmt.Sprintf("phase%d", perDept), depts, lifecycles, watches)
			for _, d := range depts {
				for _, w := range watches[d] {
					checkDeliveries(t, w, issues[d])
					if got := len(w.stop()); got != changes {
						t.Errorf("a watch of %s received %d changes; want %d", d, got, changes)
					}
				}
				// Each watch reads each entry of its department's feed once, and nothing else.
				if got, want := h.svc.app.FeedEntriesRead(d)-readBefore[d], uint64(perDept*changes); got != want {
					t.Errorf("the %d watches of %s read %d feed entries; want %d, %d each", perDept, d, got, want, changes)
				}
			}
		})
	}
}

func TestAnInboxWatchCutAndResumedFromItsLastPositionMissesNothingAndRepeatsNothing(t *testing.T) {
	t.Parallel()
	h := start(t)
	c := h.client(officer("water", 1))
	ack := func(id string) {
		if _, err := c.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
			t.Fatal(err)
		}
	}
	resolve := func(id string) {
		if _, err := c.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "done"}); err != nil {
			t.Fatal(err)
		}
	}
	early := h.dispatch("early", "xinhua-taoyuan-01", "water")
	h.Settled(Name)

	first := h.watchInbox("water", "")
	if len(first.snapshot) != 1 || first.snapshot[0].issue != early {
		t.Fatalf("the inbox as it stood was %v; want %s", first.snapshot, early)
	}
	start := first.lastPosition() // the bookmark: nothing received after it yet
	x := h.dispatch("x", "xinhua-taoyuan-02", "water")
	first.waitFor(t, x, dispatched)
	ack(early)
	first.waitFor(t, early, acknowledged)
	cut := first.stop()
	if got := deliveries(cut); got != x+" dispatched, "+early+" acknowledged" {
		t.Fatalf("the first watch received %s", got)
	}

	// While no one watches: x goes through its whole life, y is dispatched, early is resolved,
	// and power's inbox changes too.
	ack(x)
	resolve(x)
	y := h.dispatch("y", "hexi-binjiang-02", "water", "power")
	resolve(early)
	h.dispatch("not-water", "hexi-binjiang-02", "power")
	h.Settled(Name)

	// Resumed after the last change received: each issue as it now stands, once, in the order of
	// its latest change; x's acknowledgement is not shown on its own, since its resolution
	// already says it.
	resumed := h.watchInbox("water", cut[len(cut)-1].position)
	want := x + " resolved, " + y + " dispatched, " + early + " resolved"
	wait.For(t, 10*time.Second, 5*time.Millisecond, func() error {
		if got := deliveries(resumed.received()); got != want {
			return fmt.Errorf("the resumed watch received %q; want %q (ended with %v)", got, want, resumed.err())
		}
		return nil
	})
	// Cut again after x; resumed once more, it goes on with y, and with what comes next.
	again := h.watchInbox("water", resumed.stop()[0].position)
	again.waitFor(t, early, resolved)
	ack(y)
	again.waitFor(t, y, acknowledged)
	if got, want := deliveries(again.received()), y+" dispatched, "+early+" resolved, "+y+" acknowledged"; got != want {
		t.Fatalf("the watch resumed after x received %q; want %q", got, want)
	}
	// Resumed from the bookmark of the first watch: every change since, each issue at its
	// latest.
	fromStart := h.watchInbox("water", start)
	want = x + " resolved, " + early + " resolved, " + y + " acknowledged"
	wait.For(t, 10*time.Second, 5*time.Millisecond, func() error {
		if got := deliveries(fromStart.received()); got != want {
			return fmt.Errorf("the watch resumed from the bookmark received %q; want %q", got, want)
		}
		return nil
	})

	// A position that is not one is refused naming the field.
	bad, err := c.WatchInbox(t.Context(), &whistlev1.WatchInboxRequest{After: "yesterday"})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "after") {
		t.Fatalf("a watch after %q: %v; want InvalidArgument naming after", "yesterday", err)
	}
	// A position of no feed of this Redis (it was wiped and rebuilt since, say) cannot be resumed.
	gone, err := c.WatchInbox(t.Context(), &whistlev1.WatchInboxRequest{After: "1-0"})
	if err == nil {
		_, err = gone.Recv()
	}
	if status.Code(err) != codes.OutOfRange {
		t.Fatalf("a watch after a position the feed never held: %v; want OutOfRange", err)
	}
}

// deliveries renders what a watch received as "issue status, ...".
func deliveries(ds []delivery) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.issue+" "+strings.ToLower(strings.TrimPrefix(d.status.String(), "ASSIGNMENT_STATUS_")))
	}
	return strings.Join(s, ", ")
}

func TestASupervisorsInboxWatchShowsOnlyTheGridsInTheirScope(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sup := authx.Principal{Subject: "sup-xinhua", Role: authx.RoleSupervisor, Scope: "xinhua"}
	watch, err := h.client(sup).WatchInbox(ctx, &whistlev1.WatchInboxRequest{UnitId: "water"})
	if err != nil {
		t.Fatal(err)
	}
	if bookmark, err := watch.Recv(); err != nil || bookmark.GetItem() != nil {
		t.Fatalf("first watched %v, %v; want the bookmark of an empty inbox", bookmark, err)
	}
	h.dispatch("hexi", "hexi-binjiang-01", "water") // another street's
	inScope := h.dispatch("xinhua", "xinhua-hebin-01", "water")
	got, err := watch.Recv()
	if err != nil || got.GetItem().GetIssueId() != inScope {
		t.Fatalf("watched %v, %v; want only %s, in xinhua", got, err, inScope)
	}
}

func TestAnInboxWatchShowsAnItemQuarantinedOnceItsIssueIs(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.dispatch("garbled", "xinhua-taoyuan-01", "water")
	h.Settled(Name)
	w := h.watchInbox("water", "")
	js, err := jetstream.New(h.Deps.NATS)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(t.Context(), eventlog.Subject(id, "acknowledged"), []byte("\xffnot an event"))
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, 5*time.Millisecond, func() error {
		for _, d := range w.received() {
			if d.issue == id && d.quarantinedAt == ack.Sequence {
				return nil
			}
		}
		return fmt.Errorf("the watch has not shown %s quarantined at %d: %v (ended with %v)", id, ack.Sequence, w.received(), w.err())
	})
	if got := w.received(); len(got) != 1 || got[0].status != dispatched {
		t.Fatalf("the watch received %v; want only %s, dispatched as before and quarantined", got, id)
	}
}
