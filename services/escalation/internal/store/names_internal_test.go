package store

import (
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
)

// TestComparingNamesOrdersTimersAsTheirNamesCompare checks the comparison the due timers are
// sorted by against the names themselves, which Redis orders the members of one score by.
func TestComparingNamesOrdersTimersAsTheirNamesCompare(t *testing.T) {
	id := rapid.StringMatching(`[A-Za-z0-9|_-]{0,6}`)
	timer := rapid.Custom(func(t *rapid.T) domain.Timer {
		return domain.Timer{IssueID: id.Draw(t, "issue"), UnitID: id.Draw(t, "unit"),
			Kind: domain.Kind(rapid.SampledFrom([]string{"report-in", "resolve", "report"}).Draw(t, "kind")),
			Step: rapid.SampledFrom([]domain.Step{domain.BreachStep, domain.RemindStep, domain.EscalateStep}).Draw(t, "step")}
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b := timer.Draw(t, "a"), timer.Draw(t, "b")
		if got, want := compareNames(a, b), strings.Compare(a.Name(), b.Name()); got != want {
			t.Fatalf("compareNames(%q, %q) = %d, want %d", a.Name(), b.Name(), got, want)
		}
		if compareNames(a, a) != 0 {
			t.Fatalf("%q compares unequal to itself", a.Name())
		}
	})
}
