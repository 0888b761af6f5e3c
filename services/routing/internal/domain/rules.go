// Package domain holds routing's rules and its view of an issue: which rules send an issue to
// which departments, which unit of each serves the place, and whether the issue still
// waits for that decision.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// Limits of a rules file, so that a table stays something people can read and routing stays
// cheap per issue.
const (
	MaxRules         = 1000
	MaxWordsPerRule  = 50
	MaxAreasPerRule  = 100
	MaxAssistingUnit = 10
)

// What the table does with an issue no rule decides.
const (
	// OtherwiseStreetGovernment sends it to the street government of the street, the
	// default owner of a matter no department clearly owns.
	OtherwiseStreetGovernment = "street-government"
	// OtherwiseDesk leaves it at the dispatch desk for a dispatcher.
	OtherwiseDesk = "desk"
)

// Kinds of day a rule may match.
const (
	Workday = "workday" // Monday to Friday
	Weekend = "weekend" // Saturday and Sunday
)

// Rule sends issues that match all of its conditions to a lead department and any assisting
// ones. A condition left empty matches everything.
type Rule struct {
	ID string
	// Categories, Areas (any level of the tree: the grid or an area above it) and
	// Urgencies the issue must be one of.
	Categories, Areas []string
	Urgencies         []whistlev1.Urgency
	// Words: the text must contain one of them (case and width of letters ignored).
	Words []string
	// From and To bound the time of day, in the city's time zone, at which the issue was
	// raised: From inclusive, To exclusive; To before From wraps past midnight. Both zero: any.
	From, To time.Duration
	hours    bool
	// Days is Workday, Weekend or empty for any.
	Days string
	// Lead and Assisting are department ids; the place picks each one's unit.
	Lead      string
	Assisting []string
	// GoOn says to try the rules after this one too when it matches: their departments join
	// as assisting ones (a later rule's lead assists when a lead is already chosen).
	GoOn bool
	// Line is where the rule starts in its file.
	Line int
}

// Departments returns the departments the rule summons, lead first.
func (r Rule) Departments() []string { return append([]string{r.Lead}, r.Assisting...) }

// Table is a validated routing table. It is immutable and safe for concurrent use.
type Table struct {
	rules []Rule
	// Otherwise is OtherwiseStreetGovernment or OtherwiseDesk.
	Otherwise string
	// StreetGovernment is the department that owns what no rule decides, when Otherwise says so.
	StreetGovernment string
	// Desk is the dispatch desk: its department (the place picks the unit) and how long
	// it may hold an issue before its deadline passes.
	Desk struct {
		Department string
		Within     time.Duration
	}
	// ReturnLimit is how many returns an issue takes before it goes to the desk instead of being
	// routed again; a return by the lead always sends it there.
	ReturnLimit int
	// GridMatters are the categories kept in the grid first (小事一格解决), and how long the grid's
	// worker has before they whistle to departments.
	GridMatters struct {
		Categories []string
		Within     time.Duration
	}
	// Duplicates: a new issue of the same category within Meters and Within of an open one joins
	// it instead of being dispatched; zero Meters turns it off.
	Duplicates struct {
		Meters float64
		Within time.Duration
	}
	version string
}

// Defaults of the table's settings a rules file leaves out.
const (
	DefaultDeskDepartment = "dispatch-desk"
	DefaultDeskWithin     = 2 * time.Hour
	DefaultReturnLimit    = 2
)

// GridMatter reports whether issues of a category go to the grid's worker first.
func (t *Table) GridMatter(category string) bool {
	return slices.Contains(t.GridMatters.Categories, category)
}

// ruleFile is one rule as written. category and street are the older single-valued spellings
// of categories and areas.
type ruleFile struct {
	ID         string   `yaml:"id"`
	Category   string   `yaml:"category"`
	Categories []string `yaml:"categories"`
	Street     string   `yaml:"street"`
	Area       string   `yaml:"area"`
	Areas      []string `yaml:"areas"`
	Urgency    []string `yaml:"urgency"`
	Words      []string `yaml:"words"`
	Hours      string   `yaml:"hours"`
	Days       string   `yaml:"days"`
	Lead       string   `yaml:"lead"`
	Assisting  []string `yaml:"assisting"`
	GoOn       bool     `yaml:"continue"`
}

// tableFile is the rules file.
type tableFile struct {
	Otherwise        string `yaml:"otherwise"`
	StreetGovernment string `yaml:"street_government"`
	Desk             struct {
		Department string        `yaml:"department"`
		Within     time.Duration `yaml:"within"`
	} `yaml:"desk"`
	Returns struct {
		Limit *int `yaml:"limit"`
	} `yaml:"returns"`
	GridMatters struct {
		Categories []string      `yaml:"categories"`
		Within     time.Duration `yaml:"within"`
	} `yaml:"grid_matters"`
	Duplicates struct {
		Meters float64       `yaml:"within_meters"`
		Within time.Duration `yaml:"within"`
	} `yaml:"duplicates"`
	Rules []yaml.Node `yaml:"rules"`
}

// ParseRules reads a routing table from the YAML of the named file and checks it against the
// catalog, refusing it with every fault found, each with the file and line: an id empty or used
// twice, a category, area or department the catalog does not hold, a condition that cannot be
// read, a department summoned twice by one rule, or one that has no unit serving a grid where the
// rule applies (so that every route the table makes can be dispatched).
func ParseRules(name string, data []byte, cat *catalog.Catalog) (*Table, error) {
	var f tableFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty table
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	t := &Table{Otherwise: f.Otherwise, StreetGovernment: f.StreetGovernment}
	if t.Otherwise == "" {
		t.Otherwise = OtherwiseDesk
	}
	if t.StreetGovernment == "" {
		t.StreetGovernment = OtherwiseStreetGovernment
	}
	var errs []error
	fault := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	t.settings(f, cat, func(format string, args ...any) { fault(1, format, args...) })
	switch t.Otherwise {
	case OtherwiseDesk:
	case OtherwiseStreetGovernment:
		if _, err := cat.Department(t.StreetGovernment); err != nil {
			fault(1, "otherwise sends issues to the street government, but %v", err)
		}
	default:
		fault(1, "otherwise must be %q or %q, not %q", OtherwiseStreetGovernment, OtherwiseDesk, t.Otherwise)
	}
	if len(f.Rules) > MaxRules {
		fault(f.Rules[MaxRules].Line, "more than %d rules", MaxRules)
	}
	ids := map[string]int{}
	for _, n := range f.Rules {
		var rf ruleFile
		dn := n
		if err := decodeStrict(&dn, &rf); err != nil {
			fault(n.Line, "%v", err)
			continue
		}
		r, err := rf.rule(cat)
		r.Line = n.Line
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: rule %q: %w", name, n.Line, rf.ID, err))
			continue
		}
		if first, dup := ids[r.ID]; dup {
			fault(n.Line, "rule %q appears twice (first at line %d)", r.ID, first)
			continue
		}
		if err := servable(r, cat); err != nil {
			fault(n.Line, "rule %q: %v", r.ID, err)
			continue
		}
		ids[r.ID] = n.Line
		t.rules = append(t.rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	t.version = hex.EncodeToString(sum[:6]) + "." + cat.Digest()
	return t, nil
}

// decodeStrict decodes a node, refusing a key the target does not have.
func decodeStrict(n *yaml.Node, v any) error {
	out, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(out)))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// Version identifies the table and the catalog it was checked against: every route records it.
func (t *Table) Version() string { return t.version }

// Rules returns the rules in the order they are tried.
func (t *Table) Rules() []Rule { return slices.Clone(t.rules) }

// urgencies are the names rules give urgencies.
var urgencies = map[string]whistlev1.Urgency{
	"normal": whistlev1.Urgency_URGENCY_NORMAL, "urgent": whistlev1.Urgency_URGENCY_URGENT,
	"emergency": whistlev1.Urgency_URGENCY_EMERGENCY,
}

// rule checks one rule as written against the catalog and reads its conditions.
func (rf ruleFile) rule(cat *catalog.Catalog) (Rule, error) {
	r := Rule{ID: rf.ID, Categories: rf.Categories, Areas: rf.Areas, Words: rf.Words, Days: rf.Days,
		Lead: rf.Lead, Assisting: rf.Assisting, GoOn: rf.GoOn}
	if r.ID == "" {
		return r, errors.New("no id")
	}
	if rf.Category != "" {
		r.Categories = append([]string{rf.Category}, r.Categories...)
	}
	for _, a := range []string{rf.Street, rf.Area} {
		if a != "" {
			r.Areas = append([]string{a}, r.Areas...)
		}
	}
	for _, k := range r.Categories {
		if _, err := cat.Category(k); err != nil {
			return r, err
		}
	}
	if len(r.Areas) > MaxAreasPerRule {
		return r, fmt.Errorf("more than %d areas", MaxAreasPerRule)
	}
	for _, a := range r.Areas {
		if _, err := cat.Area(a); err != nil {
			return r, err
		}
	}
	if rf.Street != "" {
		if a, _ := cat.Area(rf.Street); a.Level != catalog.LevelStreet {
			return r, fmt.Errorf("street %q is a %s: %w", rf.Street, a.Level, catalog.ErrUnknown)
		}
	}
	for _, u := range rf.Urgency {
		v, ok := urgencies[u]
		if !ok {
			return r, fmt.Errorf("urgency %q: want normal, urgent or emergency", u)
		}
		r.Urgencies = append(r.Urgencies, v)
	}
	if len(r.Words) > MaxWordsPerRule {
		return r, fmt.Errorf("more than %d words", MaxWordsPerRule)
	}
	for i, w := range r.Words {
		if r.Words[i] = fold(w); r.Words[i] == "" {
			return r, errors.New("an empty word")
		}
	}
	if rf.Hours != "" {
		var err error
		if r.From, r.To, err = parseHours(rf.Hours); err != nil {
			return r, err
		}
		r.hours = true
	}
	if r.Days != "" && r.Days != Workday && r.Days != Weekend {
		return r, fmt.Errorf("days %q: want %s or %s", r.Days, Workday, Weekend)
	}
	if r.Lead == "" {
		return r, errors.New("no lead department")
	}
	if len(r.Assisting) > MaxAssistingUnit {
		return r, fmt.Errorf("more than %d assisting departments", MaxAssistingUnit)
	}
	seen := map[string]bool{}
	for _, d := range r.Departments() {
		if _, err := cat.Department(d); err != nil {
			return r, err
		}
		if seen[d] {
			return r, fmt.Errorf("department %q is summoned twice", d)
		}
		seen[d] = true
	}
	return r, nil
}

// servable checks that each department the rule summons has a unit serving every grid the rule
// can apply to.
func servable(r Rule, cat *catalog.Catalog) error {
	for _, a := range cat.Areas() {
		if a.Level != catalog.LevelGrid || !r.coversArea(cat, a.ID) {
			continue
		}
		for _, d := range r.Departments() {
			if _, err := cat.UnitFor(d, a.ID); err != nil {
				return fmt.Errorf("no unit of %s serves grid %s, where the rule applies", d, a.ID)
			}
		}
	}
	return nil
}

// parseHours reads "HH:MM-HH:MM".
func parseHours(s string) (from, to time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if ok {
		if from, err = clockTime(a); err == nil {
			to, err = clockTime(b)
		}
	}
	if !ok || err != nil || from == to {
		return 0, 0, fmt.Errorf("hours %q: want HH:MM-HH:MM, two different times of day", s)
	}
	return from, to, nil
}

// clockTime reads "HH:MM" as the time since midnight; "24:00" is the end of the day.
func clockTime(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if strings.TrimSpace(s) == "24:00" {
		return 24 * time.Hour, nil
	}
	if err != nil {
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// fold is text as words are compared: lower case, with full-width Latin letters and digits
// made half-width, so that "ＧＡＳ" matches "gas".
func fold(s string) string {
	return strings.ToLower(strings.Map(func(r rune) rune {
		if r >= '！' && r <= '～' {
			return r - '！' + '!'
		}
		return r
	}, strings.TrimSpace(s)))
}

// coversArea reports whether the rule's area condition admits a grid.
func (r Rule) coversArea(cat *catalog.Catalog, grid string) bool {
	return len(r.Areas) == 0 || slices.ContainsFunc(r.Areas, func(a string) bool { return cat.Contains(a, grid) })
}

// Summary says the rule in words, as a dispatcher reads it in a list.
func (r Rule) Summary() string {
	var when []string
	if len(r.Categories) > 0 {
		when = append(when, "category "+strings.Join(r.Categories, " or "))
	}
	if len(r.Areas) > 0 {
		when = append(when, "in "+strings.Join(r.Areas, " or "))
	}
	if len(r.Urgencies) > 0 {
		names := make([]string, len(r.Urgencies))
		for i, u := range r.Urgencies {
			names[i] = urgencyName(u)
		}
		when = append(when, strings.Join(names, " or "))
	}
	if len(r.Words) > 0 {
		when = append(when, fmt.Sprintf("text has %q", r.Words))
	}
	if r.Days != "" {
		when = append(when, "on a "+r.Days)
	}
	if r.hours {
		when = append(when, "from "+hhmm(r.From)+" to "+hhmm(r.To))
	}
	if len(when) == 0 {
		when = append(when, "every issue")
	}
	s := strings.Join(when, ", ") + ": " + r.Lead + " leads"
	if len(r.Assisting) > 0 {
		s += ", " + strings.Join(r.Assisting, ", ") + " assist"
	}
	if r.GoOn {
		s += "; then the next rules too"
	}
	return s
}

// settings reads the table's settings beside its rules, with their defaults, and checks them
// against the catalog.
func (t *Table) settings(f tableFile, cat *catalog.Catalog, fault func(format string, args ...any)) {
	t.Desk.Department, t.Desk.Within = f.Desk.Department, f.Desk.Within
	if t.Desk.Department == "" {
		t.Desk.Department = DefaultDeskDepartment
	}
	if t.Desk.Within == 0 {
		t.Desk.Within = DefaultDeskWithin
	}
	if _, err := cat.Department(t.Desk.Department); err != nil {
		fault("desk: %v", err)
	} else {
		for _, a := range cat.Areas() {
			if _, err := cat.UnitFor(t.Desk.Department, a.ID); a.Level == catalog.LevelGrid && err != nil {
				fault("desk: no unit of %s serves grid %s", t.Desk.Department, a.ID)
				break
			}
		}
	}
	if t.Desk.Within < 0 {
		fault("desk: within must be positive")
	}
	t.ReturnLimit = DefaultReturnLimit
	if f.Returns.Limit != nil {
		t.ReturnLimit = *f.Returns.Limit
	}
	if t.ReturnLimit < 0 {
		fault("returns: limit must be 0 or more")
	}
	t.GridMatters.Categories, t.GridMatters.Within = f.GridMatters.Categories, f.GridMatters.Within
	for _, k := range t.GridMatters.Categories {
		if _, err := cat.Category(k); err != nil {
			fault("grid_matters: %v", err)
		}
	}
	if len(t.GridMatters.Categories) > 0 && t.GridMatters.Within <= 0 {
		fault("grid_matters: within must be positive")
	}
	t.Duplicates.Meters, t.Duplicates.Within = f.Duplicates.Meters, f.Duplicates.Within
	if t.Duplicates.Meters < 0 || t.Duplicates.Meters > 0 && t.Duplicates.Within <= 0 {
		fault("duplicates: within_meters must be 0 or more, and within positive when it is not 0")
	}
}
