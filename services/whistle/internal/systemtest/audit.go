package systemtest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// Clock names one deadline of one assignment.
type Clock struct {
	Issue, Department string
	Kind              whistlev1.DeadlineKind
}

// Verdicts are, per deadline, how many breaches an auditor finds owed and how many breach events
// the stream holds.
type Verdicts struct {
	Owed, Recorded map[Clock]int
}

// Audit reads the issues' events from the stream alone, as an auditor would years later, and
// judges every deadline on the stream's clock, without any code of the services: a deadline owes
// one breach when the event that clears it was stored after it, or when none was and the stream's
// clock has passed it. A supervisor's approval of an extension stored before the deadline it
// names, while its clock runs, moves the deadline to the one granted. It also counts the breach
// events the stream holds.
func Audit(t testing.TB, sys *system.System, issues []string) Verdicts {
	t.Helper()
	return AuditLog(t, sys.Deps().Log, issues)
}

// AuditLog is Audit on a log of the caller's, for a system that runs elsewhere (in processes of
// its own, as whistle cluster runs it).
func AuditLog(t testing.TB, log *eventlog.Log, issues []string) Verdicts {
	t.Helper()
	now, err := log.Now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	v := Verdicts{Owed: map[Clock]int{}, Recorded: map[Clock]int{}}
	for _, id := range issues {
		recs, err := log.Read(t.Context(), id, 0)
		if err != nil {
			t.Fatalf("audit %s: %v", id, err)
		}
		deadlines := map[Clock]time.Time{}
		cleared := map[Clock]time.Time{}
		clear := func(c Clock, at time.Time) {
			if _, ok := cleared[c]; !ok {
				cleared[c] = at
			}
		}
		for _, rec := range recs {
			switch p := rec.Event.GetPayload().(type) {
			case *whistlev1.Event_Routed:
				for _, d := range p.Routed.GetDispatches() {
					for kind, at := range map[whistlev1.DeadlineKind]time.Time{
						whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN: d.GetReportInBy().AsTime(),
						whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE:   d.GetResolveBy().AsTime(),
					} {
						c := Clock{id, assignment.UnitOf(d.GetDepartmentId(), d.GetUnitId()), kind}
						if _, ok := deadlines[c]; !ok { // frozen at the first dispatch
							deadlines[c] = at
						}
					}
				}
			case *whistlev1.Event_Acknowledged:
				clear(Clock{id, assignment.UnitOf(p.Acknowledged.GetDepartmentId(), p.Acknowledged.GetUnitId()), whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN}, rec.Time)
			case *whistlev1.Event_Resolved:
				clear(Clock{id, assignment.UnitOf(p.Resolved.GetDepartmentId(), p.Resolved.GetUnitId()), whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN}, rec.Time)
				clear(Clock{id, assignment.UnitOf(p.Resolved.GetDepartmentId(), p.Resolved.GetUnitId()), whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE}, rec.Time)
			case *whistlev1.Event_Breached:
				v.Recorded[Clock{id, assignment.UnitOf(p.Breached.GetDepartmentId(), p.Breached.GetUnitId()), p.Breached.GetKind()}]++
			case *whistlev1.Event_ExtensionDecided:
				d := p.ExtensionDecided
				c := Clock{id, assignment.UnitOf(d.GetDepartmentId(), d.GetUnitId()), d.GetKind()}
				if _, done := cleared[c]; d.GetApproved() && !done && rec.Time.Before(deadlines[c]) {
					deadlines[c] = d.GetGranted().AsTime()
				}
			}
		}
		for c, deadline := range deadlines {
			at, ok := cleared[c]
			if (ok && at.After(deadline)) || (!ok && now.After(deadline)) {
				v.Owed[c] = 1
			}
		}
	}
	return v
}

// Agree reports how the recorded breaches differ from those owed, or nil when they agree.
func (v Verdicts) Agree() error {
	var diffs []string
	for c, n := range v.Owed {
		if v.Recorded[c] != n {
			diffs = append(diffs, fmt.Sprintf("%s %s %s: owed %d, recorded %d", c.Issue, c.Department, c.Kind, n, v.Recorded[c]))
		}
	}
	for c, n := range v.Recorded {
		if v.Owed[c] == 0 {
			diffs = append(diffs, fmt.Sprintf("%s %s %s: owed none, recorded %d", c.Issue, c.Department, c.Kind, n))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	return fmt.Errorf("the stream's breaches differ from what it owes:\n%s", strings.Join(diffs, "\n"))
}

// Breaches counts the breaches owed.
func (v Verdicts) Breaches() int { return len(v.Owed) }

// Firing is what the stream holds of one deadline: the deadline in force (frozen at the
// assignment's first dispatch, or moved by an extension approved before it), when the event that
// clears it was first stored, and every breach event recorded of it.
type Firing struct {
	Deadline time.Time
	// Cleared is when the stream stored the first event that cleared the deadline; zero when none.
	Cleared  time.Time
	Breaches []eventlog.Record
}

// Owed reports whether the deadline owes a breach at the stream's clock now, by Audit's rule.
func (f *Firing) Owed(now time.Time) bool {
	if f.Deadline.IsZero() {
		return false // never dispatched
	}
	if !f.Cleared.IsZero() {
		return f.Cleared.After(f.Deadline)
	}
	return now.After(f.Deadline)
}

// Firings are the deadlines of every issue in the stream and their breaches, as the stream held
// them when its clock read Now.
type Firings struct {
	Now    time.Time
	Clocks map[Clock]*Firing
}

// NoTimers says whether escalation keeps no timer in rdb: an error names how many it keeps. Once
// every deadline owed has fired and none is kept, no breach more can follow.
func NoTimers(ctx context.Context, rdb redis.UniversalClient) error {
	open := int64(0)
	for p := range eventlog.Partitions {
		n, err := rdb.ZCard(ctx, "escalation:timers:"+eventlog.PartitionTag(p)).Result()
		if err != nil {
			return err
		}
		open += n
	}
	if open > 0 {
		return fmt.Errorf("escalation keeps %d timers", open)
	}
	return nil
}

// WaitFired waits, reading the stream every poll for at most timeout, until its clock has passed
// last, the last deadline a test set, and every deadline owed has fired; it returns the firings
// it read then. A deadline fired twice may still be to come: check once nothing more can fire.
func WaitFired(t *testing.T, log *eventlog.Log, last time.Time, timeout, poll time.Duration) Firings {
	t.Helper()
	var fs Firings
	wait.For(t, timeout, poll, func() error {
		var err error
		if fs, err = ReadFirings(t.Context(), log); err != nil {
			return err
		}
		if fs.Now.Before(last) {
			return fmt.Errorf("the stream's clock reads %s, before the last deadline", fs.Now.Format(time.TimeOnly))
		}
		if n := fs.Missing(); n > 0 {
			return fmt.Errorf("%d deadlines owed have not fired", n)
		}
		return nil
	})
	return fs
}

// ReadFirings reads the whole stream once, in stream order, with one ordered consumer rather than
// a read per issue, so that a test can look as often as it needs while thousands of deadlines fall
// due. It judges the deadlines as Audit does. The stream's clock is read first: every deadline
// that had passed by then is owed, and its breach, stored later, may be missing from this read,
// but never the other way round.
func ReadFirings(ctx context.Context, log *eventlog.Log) (Firings, error) {
	fs := Firings{Clocks: map[Clock]*Firing{}}
	var err error
	if fs.Now, err = log.Now(ctx); err != nil {
		return fs, err
	}
	head, err := log.Head(ctx)
	if err != nil || head == 0 {
		return fs, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recs, err := log.Follow(ctx, eventlog.SubjectRoot+".>", 0)
	if err != nil {
		return fs, err
	}
	clock := func(issue, dept, unit string, kind whistlev1.DeadlineKind) *Firing {
		c := Clock{issue, assignment.UnitOf(dept, unit), kind}
		f, ok := fs.Clocks[c]
		if !ok {
			f = &Firing{}
			fs.Clocks[c] = f
		}
		return f
	}
	clear := func(f *Firing, at time.Time) {
		if f.Cleared.IsZero() {
			f.Cleared = at
		}
	}
	for rec := range recs {
		id := rec.Event.GetIssueId()
		switch p := rec.Event.GetPayload().(type) {
		case *whistlev1.Event_Routed:
			for _, d := range p.Routed.GetDispatches() {
				for kind, at := range map[whistlev1.DeadlineKind]time.Time{
					whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN: d.GetReportInBy().AsTime(),
					whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE:   d.GetResolveBy().AsTime(),
				} {
					if f := clock(id, d.GetDepartmentId(), d.GetUnitId(), kind); f.Deadline.IsZero() { // frozen at the first dispatch
						f.Deadline = at
					}
				}
			}
		case *whistlev1.Event_Acknowledged:
			a := p.Acknowledged
			clear(clock(id, a.GetDepartmentId(), a.GetUnitId(), whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN), rec.Time)
		case *whistlev1.Event_Resolved:
			r := p.Resolved
			clear(clock(id, r.GetDepartmentId(), r.GetUnitId(), whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN), rec.Time)
			clear(clock(id, r.GetDepartmentId(), r.GetUnitId(), whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE), rec.Time)
		case *whistlev1.Event_Breached:
			f := clock(id, p.Breached.GetDepartmentId(), p.Breached.GetUnitId(), p.Breached.GetKind())
			f.Breaches = append(f.Breaches, rec)
		case *whistlev1.Event_ExtensionDecided:
			d := p.ExtensionDecided
			f := clock(id, d.GetDepartmentId(), d.GetUnitId(), d.GetKind())
			if d.GetApproved() && f.Cleared.IsZero() && rec.Time.Before(f.Deadline) {
				f.Deadline = d.GetGranted().AsTime()
			}
		}
		if rec.Seq >= head {
			return fs, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return fs, err
	}
	return fs, errors.New("systemtest: the stream's reader stopped before its head")
}

// Breaches counts the breach events read.
func (fs Firings) Breaches() int {
	n := 0
	for _, f := range fs.Clocks {
		n += len(f.Breaches)
	}
	return n
}

// Missing counts the deadlines that owe a breach at the stream's clock and have none yet.
func (fs Firings) Missing() int {
	n := 0
	for _, f := range fs.Clocks {
		if f.Owed(fs.Now) && len(f.Breaches) == 0 {
			n++
		}
	}
	return n
}

// Check reports every deadline whose breaches are not exactly what it owes at the stream's clock:
// one breach for a deadline owed, none for another, each naming the deadline in force and stored
// no earlier than it. It counts the breach events of each deadline, so that a deadline fired twice
// shows as such, not as one fired deadline. Nil means every deadline fired exactly once or never.
func (fs Firings) Check() error {
	var diffs []string
	for c, f := range fs.Clocks {
		name := fmt.Sprintf("%s %s %s (deadline %s)", c.Issue, c.Department, c.Kind, f.Deadline.Format(time.StampMilli))
		switch owed := f.Owed(fs.Now); {
		case f.Deadline.IsZero():
			diffs = append(diffs, fmt.Sprintf("%s: %d breaches of a deadline never dispatched", name, len(f.Breaches)))
		case owed && len(f.Breaches) == 0:
			diffs = append(diffs, name+": owed a breach, none recorded")
		case owed && len(f.Breaches) > 1, !owed && len(f.Breaches) > 0:
			var seqs []string
			for _, b := range f.Breaches {
				seqs = append(seqs, fmt.Sprint(b.Seq))
			}
			want := 0
			if owed {
				want = 1
			}
			diffs = append(diffs, fmt.Sprintf("%s: owed %d, recorded %d (at %s)", name, want, len(f.Breaches), strings.Join(seqs, ", ")))
		}
		for _, b := range f.Breaches {
			if named := b.Event.GetBreached().GetDeadline().AsTime(); !named.Equal(f.Deadline) {
				diffs = append(diffs, fmt.Sprintf("%s: the breach at %d names the deadline %s", name, b.Seq, named.Format(time.StampMilli)))
			}
			if b.Time.Before(f.Deadline) {
				diffs = append(diffs, fmt.Sprintf("%s: the breach at %d was stored at %s, before the deadline", name, b.Seq, b.Time.Format(time.StampMilli)))
			}
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	const shown = 20
	total, more := len(diffs), ""
	if total > shown {
		more = fmt.Sprintf("\n... and %d more", total-shown)
		diffs = diffs[:shown]
	}
	return fmt.Errorf("%d faults in the firing of %d deadlines:\n%s%s", total, len(fs.Clocks), strings.Join(diffs, "\n"), more)
}
