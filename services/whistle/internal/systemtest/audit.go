package systemtest

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
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
