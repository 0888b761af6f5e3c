package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// Outcomes of a route.
const (
	// ByRules: a rule decided the lead.
	ByRules = "rules"
	// ToStreetGovernment: no rule decided, and the table sends such issues to the street
	// government of the street.
	ToStreetGovernment = "street-government"
	// ToDesk: no rule decided, and the issue waits for a dispatcher.
	ToDesk = "desk"
	// ToGrid: a grid matter, kept first by the grid's own worker.
	ToGrid = "grid-matter"
)

// Case is what the rules see of an issue.
type Case struct {
	Grid, Category string
	Urgency        whistlev1.Urgency
	Text           string
	// At is when the issue was raised (the time the stream stored the raise): the time of day
	// and the kind of day rules match on.
	At time.Time
}

// Trial is one rule tried and what came of it.
type Trial struct {
	RuleID  string
	Matched bool
	// Reason says why it matched, or names the first condition that failed.
	Reason string
	// WentOn is set when the rule matched and routing tried the next rules too.
	WentOn bool
}

// Summons is one unit a route summons.
type Summons struct {
	Department, Unit string
	Role             whistlev1.AssignmentRole
}

// Route is where the table sends an issue, and why.
type Route struct {
	Outcome string
	// RuleID is the rule that decided the lead; Matched every rule that matched, in order.
	RuleID  string
	Matched []string
	// Summons are the units, lead first; none when the issue goes to the desk.
	Summons []Summons
	Trials  []Trial
	// Explanation says it in words.
	Explanation string
}

// Route applies the table to an issue: the rules in order, the first that matches decides the
// lead, and each matching rule that says so lets the next ones add assisting departments. The
// issue's place picks the unit of every department. Departments in without are left out (they
// returned the issue); a route whose lead would be one of them goes to the desk. With no rule
// matched, the table's Otherwise decides.
func (t *Table) Route(cat *catalog.Catalog, c Case, without []string) Route {
	var rt Route
	var lead string
	var assisting []string
	for _, r := range t.rules {
		ok, reason := r.matches(cat, c)
		trial := Trial{RuleID: r.ID, Matched: ok, Reason: reason}
		if ok {
			rt.Matched = append(rt.Matched, r.ID)
			if lead == "" {
				lead, rt.RuleID = r.Lead, r.ID
			} else {
				assisting = append(assisting, r.Lead)
			}
			assisting = append(assisting, r.Assisting...)
			trial.WentOn = r.GoOn
		}
		rt.Trials = append(rt.Trials, trial)
		if ok && !r.GoOn {
			break
		}
	}
	switch {
	case lead != "" && slices.Contains(without, lead):
		rt.Outcome = ToDesk
		rt.Explanation = fmt.Sprintf("rule %q names %s as lead, which returned the issue: a dispatcher must route it", rt.RuleID, lead)
		return rt
	case lead != "":
		rt.Outcome = ByRules
	case t.Otherwise == OtherwiseStreetGovernment && !slices.Contains(without, t.StreetGovernment):
		rt.Outcome, lead = ToStreetGovernment, t.StreetGovernment
	default:
		rt.Outcome = ToDesk
		rt.Explanation = fmt.Sprintf("no rule covers %s issues in %s: a dispatcher must route it", c.Category, c.Grid)
		return rt
	}
	rt.Summons = append(rt.Summons, Summons{Department: lead, Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD})
	for _, d := range assisting {
		if d == lead || slices.Contains(without, d) || slices.ContainsFunc(rt.Summons, func(s Summons) bool { return s.Department == d }) {
			continue
		}
		rt.Summons = append(rt.Summons, Summons{Department: d, Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING})
	}
	for i := range rt.Summons {
		u, err := cat.UnitFor(rt.Summons[i].Department, c.Grid)
		if err != nil { // a checked table has a unit for every grid its rules apply to
			rt.Outcome, rt.Summons = ToDesk, nil
			rt.Explanation = fmt.Sprintf("%v: a dispatcher must route it", err)
			return rt
		}
		rt.Summons[i].Unit = u.ID
	}
	rt.Explanation = rt.explain(c)
	return rt
}

// explain says a route that summons units in words.
func (rt Route) explain(c Case) string {
	units := make([]string, len(rt.Summons))
	for i, s := range rt.Summons {
		units[i] = s.Unit
	}
	who := units[0] + " (lead)"
	if len(units) > 1 {
		who += ", with " + strings.Join(units[1:], ", ") + " assisting"
	}
	if rt.Outcome == ToStreetGovernment {
		return fmt.Sprintf("no rule covers %s issues in %s: the street government owns it: %s", c.Category, c.Grid, who)
	}
	by := fmt.Sprintf("rule %q", rt.RuleID)
	if len(rt.Matched) > 1 {
		by = fmt.Sprintf("rules %q", rt.Matched)
	}
	return fmt.Sprintf("%s send %s issues in %s to %s", by, c.Category, c.Grid, who)
}

// matches says whether the rule admits the case, and why or why not.
func (r Rule) matches(cat *catalog.Catalog, c Case) (bool, string) {
	if len(r.Categories) > 0 && !slices.Contains(r.Categories, c.Category) {
		return false, fmt.Sprintf("category %s is not %s", c.Category, strings.Join(r.Categories, " or "))
	}
	if !r.coversArea(cat, c.Grid) {
		return false, fmt.Sprintf("grid %s is not in %s", c.Grid, strings.Join(r.Areas, " or "))
	}
	urgency := c.Urgency
	if urgency == whistlev1.Urgency_URGENCY_UNSPECIFIED {
		urgency = whistlev1.Urgency_URGENCY_NORMAL
	}
	if len(r.Urgencies) > 0 && !slices.Contains(r.Urgencies, urgency) {
		return false, fmt.Sprintf("urgency %s is not one the rule takes", urgencyName(urgency))
	}
	text := fold(c.Text)
	word := ""
	if len(r.Words) > 0 {
		i := slices.IndexFunc(r.Words, func(w string) bool { return strings.Contains(text, w) })
		if i < 0 {
			return false, fmt.Sprintf("the text has none of the words %q", r.Words)
		}
		word = r.Words[i]
	}
	local := c.At.In(cat.TimeZone())
	if r.Days != "" {
		weekend := local.Weekday() == time.Saturday || local.Weekday() == time.Sunday
		if weekend != (r.Days == Weekend) {
			return false, fmt.Sprintf("%s is not a %s", local.Format("Monday 2006-01-02"), r.Days)
		}
	}
	if r.hours && !r.inHours(local) {
		return false, fmt.Sprintf("%s is outside %s-%s", local.Format("15:04"), hhmm(r.From), hhmm(r.To))
	}
	why := "every condition holds"
	if word != "" {
		why += fmt.Sprintf(" (the text has %q)", word)
	}
	return true, why
}

// inHours reports whether a local time of day lies in the rule's hours.
func (r Rule) inHours(local time.Time) bool {
	h, m, s := local.Clock()
	of := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second
	if r.From < r.To {
		return of >= r.From && of < r.To
	}
	return of >= r.From || of < r.To // wraps past midnight
}

// hhmm writes a time of day.
func hhmm(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

// urgencyName is an urgency as rules write it.
func urgencyName(u whistlev1.Urgency) string {
	for name, v := range urgencies {
		if v == u {
			return name
		}
	}
	return u.String()
}
