package domain_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
)

func sample(t *testing.T) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func parse(t *testing.T, yaml string) *domain.Table {
	t.Helper()
	table, err := domain.ParseRules("rules.yaml", []byte(yaml), sample(t))
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// shanghai is the sample city's time zone, in which rules read the time of day.
var shanghai = func() *time.Location { z, _ := time.LoadLocation("Asia/Shanghai"); return z }()

// wednesdayNoon and saturdayNight are instants in the sample city's time zone.
var (
	wednesdayNoon = time.Date(2026, 12, 2, 12, 0, 0, 0, shanghai)
	saturdayNight = time.Date(2026, 12, 5, 23, 30, 0, 0, shanghai)
)

// units lists a route's units, lead first.
func units(rt domain.Route) string {
	var out []string
	for _, s := range rt.Summons {
		out = append(out, s.Unit)
	}
	return strings.Join(out, ",")
}

func TestRulesAreTriedInOrderAndTheFirstMatchDecidesTheLead(t *testing.T) {
	t.Parallel()
	table := parse(t, `
rules:
  - {id: hexi-sanitation, category: sanitation, area: hexi, lead: greening}
  - {id: sanitation, category: sanitation, lead: urban-management, assisting: [environment]}
  - {id: never, category: sanitation, lead: water}
`)
	cat := sample(t)
	for _, tc := range []struct{ grid, rule, units string }{
		{"hexi-binjiang-01", "hexi-sanitation", "greening"},
		{"xinhua-taoyuan-01", "sanitation", "urban-management-xinhua,environment"},
		{"dongfeng-jinqiao-01", "sanitation", "urban-management-dongfeng,environment"},
	} {
		rt := table.Route(cat, domain.Case{Grid: tc.grid, Category: "sanitation", At: wednesdayNoon}, nil)
		if rt.Outcome != domain.ByRules || rt.RuleID != tc.rule || units(rt) != tc.units {
			t.Errorf("%s: %s by %q to %s; want %q to %s", tc.grid, rt.Outcome, rt.RuleID, units(rt), tc.rule, tc.units)
		}
		if last := rt.Trials[len(rt.Trials)-1]; !last.Matched || last.RuleID != tc.rule {
			t.Errorf("%s: the last rule tried is %+v; routing should stop at the first match", tc.grid, last)
		}
	}
}

func TestARuleThatGoesOnLetsLaterRulesAddAssistingDepartments(t *testing.T) {
	t.Parallel()
	table := parse(t, `
rules:
  - {id: sanitation, category: sanitation, lead: urban-management, assisting: [environment], continue: true}
  - {id: vermin, category: sanitation, words: [rats], lead: health}
  - {id: also, category: sanitation, lead: water}
`)
	cat := sample(t)
	rt := table.Route(cat, domain.Case{Grid: "xinhua-taoyuan-01", Category: "sanitation", Text: "RATS everywhere", At: wednesdayNoon}, nil)
	if rt.RuleID != "sanitation" || units(rt) != "urban-management-xinhua,environment,health" || fmt.Sprint(rt.Matched) != "[sanitation vermin]" {
		t.Fatalf("route %+v", rt)
	}
	if rt.Summons[2].Role != whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING {
		t.Errorf("a later rule's lead should assist, got %v", rt.Summons[2].Role)
	}
	rt = table.Route(cat, domain.Case{Grid: "xinhua-taoyuan-01", Category: "sanitation", Text: "bins", At: wednesdayNoon}, nil)
	if units(rt) != "urban-management-xinhua,environment,water" {
		t.Errorf("without the word, the next matching rule adds its lead instead: %s", units(rt))
	}
}

func TestEachConditionDecidesAMatchAndSaysWhyNot(t *testing.T) {
	t.Parallel()
	cat := sample(t)
	for _, tc := range []struct {
		name, rule string
		c          domain.Case
		match      bool
		why        string
	}{
		{"an urgency taken", `{id: r, urgency: [urgent, emergency], lead: emergency}`, domain.Case{Urgency: whistlev1.Urgency_URGENCY_EMERGENCY}, true, ""},
		{"an urgency not taken", `{id: r, urgency: [urgent], lead: emergency}`, domain.Case{}, false, "urgency normal"},
		{"a word in the text", `{id: r, words: [煤气], lead: gas}`, domain.Case{Text: "楼道里有煤气味"}, true, "煤气"},
		{"a full-width word", `{id: r, words: [gas], lead: gas}`, domain.Case{Text: "ＧＡＳ smell"}, true, "gas"},
		{"no word", `{id: r, words: [gas], lead: gas}`, domain.Case{Text: "a hole"}, false, "none of the words"},
		{"inside hours that wrap midnight", `{id: r, hours: "22:00-06:00", lead: public-security}`, domain.Case{At: saturdayNight}, true, ""},
		{"outside hours", `{id: r, hours: "22:00-06:00", lead: public-security}`, domain.Case{At: wednesdayNoon}, false, "12:00 is outside 22:00-06:00"},
		{"a weekend", `{id: r, days: weekend, lead: public-security}`, domain.Case{At: saturdayNight}, true, ""},
		{"not a workday", `{id: r, days: workday, lead: public-security}`, domain.Case{At: saturdayNight}, false, "Saturday"},
		{"an area above the grid", `{id: r, area: xinhua-taoyuan, lead: water}`, domain.Case{}, true, ""},
		{"another area", `{id: r, areas: [hexi, dongfeng], lead: water}`, domain.Case{}, false, "hexi or dongfeng"},
		{"another category", `{id: r, categories: [noise, greenery], lead: water}`, domain.Case{}, false, "noise or greenery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := parse(t, "rules:\n  - "+tc.rule+"\n")
			c := tc.c
			c.Grid, c.Category = "xinhua-taoyuan-01", "sanitation"
			if c.At.IsZero() {
				c.At = wednesdayNoon
			}
			rt := table.Route(cat, c, nil)
			trial := rt.Trials[0]
			if trial.Matched != tc.match || !strings.Contains(trial.Reason, tc.why) {
				t.Errorf("matched %v (%s); want %v, with a reason mentioning %q", trial.Matched, trial.Reason, tc.match, tc.why)
			}
		})
	}
}

func TestWhatNoRuleDecidesGoesWhereTheTableSays(t *testing.T) {
	t.Parallel()
	cat := sample(t)
	c := domain.Case{Grid: "dongfeng-yuanlin-02", Category: "other", At: wednesdayNoon}
	desk := parse(t, "rules: []\n").Route(cat, c, nil)
	if desk.Outcome != domain.ToDesk || len(desk.Summons) != 0 || !strings.Contains(desk.Explanation, "dispatcher") {
		t.Errorf("by default: %+v; want the desk", desk)
	}
	gov := parse(t, "otherwise: street-government\nrules: []\n").Route(cat, c, nil)
	if gov.Outcome != domain.ToStreetGovernment || units(gov) != "street-government-dongfeng" {
		t.Errorf("otherwise street-government: %+v", gov)
	}
	without := parse(t, "otherwise: street-government\nrules: []\n").Route(cat, c, []string{"street-government"})
	if without.Outcome != domain.ToDesk {
		t.Errorf("a street government that returned it: %+v; want the desk", without)
	}
}

func TestADepartmentThatReturnedTheIssueIsLeftOut(t *testing.T) {
	t.Parallel()
	cat := sample(t)
	table := parse(t, `rules: [{id: drain, category: blocked-drain, lead: water, assisting: [urban-management, environment]}]`)
	c := domain.Case{Grid: "hexi-binjiang-01", Category: "blocked-drain", At: wednesdayNoon}
	if rt := table.Route(cat, c, []string{"urban-management"}); units(rt) != "water,environment" {
		t.Errorf("an assisting department returned it: %s", units(rt))
	}
	if rt := table.Route(cat, c, []string{"water"}); rt.Outcome != domain.ToDesk {
		t.Errorf("the lead returned it: %+v; want the desk", rt)
	}
}

func TestABrokenRulesFileIsRefusedNamingTheLine(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		yaml, want string
		unknown    bool
	}{
		"an unknown category":   {"rules:\n  - {id: r, category: potholes, lead: water}\n", `rules.yaml:2: rule "r": category "potholes"`, true},
		"an unknown department": {"rules:\n  - {id: r, category: noise, lead: police}\n", `rules.yaml:2: rule "r": department "police"`, true},
		"an unknown assistant":  {"rules:\n  - {id: ok, lead: water}\n  - {id: r, lead: water, assisting: [police]}\n", `rules.yaml:3:`, true},
		"an unknown area":       {"rules:\n\n  - {id: r, area: nowhere, lead: water}\n", `rules.yaml:3: rule "r": area "nowhere"`, true},
		"a grid as street":      {"rules:\n  - {id: r, street: hexi-binjiang-01, lead: water}\n", `street "hexi-binjiang-01"`, true},
		"no lead":               {"rules:\n  - {id: r, category: noise}\n", `rules.yaml:2: rule "r": no lead`, false},
		"a department twice":    {"rules:\n  - {id: r, lead: water, assisting: [water]}\n", `twice`, false},
		"a duplicate id":        {"rules:\n  - {id: a, lead: water}\n  - {id: a, lead: power}\n", `rules.yaml:3: rule "a" appears twice (first at line 2)`, false},
		"a misspelt field":      {"rules:\n  - {id: a, lead: water, asisting: [gas]}\n", `rules.yaml:2:`, false},
		"bad hours":             {"rules:\n  - {id: a, lead: water, hours: 25-3}\n", `hours "25-3"`, false},
		"a bad kind of day":     {"rules:\n  - {id: a, lead: water, days: holiday}\n", `days "holiday"`, false},
		"a bad urgency":         {"rules:\n  - {id: a, lead: water, urgency: [soon]}\n", `urgency "soon"`, false},
		"a bad otherwise":       {"otherwise: nobody\nrules: []\n", `otherwise must be`, false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := domain.ParseRules("rules.yaml", []byte(tc.yaml), sample(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseRules = %v; want an error mentioning %s", err, tc.want)
			}
			if tc.unknown && !errors.Is(err, catalog.ErrUnknown) {
				t.Fatalf("ParseRules = %v; want it to wrap catalog.ErrUnknown", err)
			}
		})
	}
}

func TestTheVersionChangesWithTheRulesAndTheCatalog(t *testing.T) {
	t.Parallel()
	a, b := parse(t, "rules: [{id: a, lead: water}]"), parse(t, "rules: [{id: a, lead: power}]")
	if a.Version() == b.Version() || a.Version() != parse(t, "rules: [{id: a, lead: water}]").Version() {
		t.Errorf("versions %s, %s: want them to differ with the text and only with it", a.Version(), b.Version())
	}
	if !strings.HasSuffix(a.Version(), "."+sample(t).Digest()) {
		t.Errorf("version %s does not name the catalog's digest %s", a.Version(), sample(t).Digest())
	}
}

func TestTheShippedRulesRouteEveryCategoryButOther(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cat := sample(t)
	table, err := domain.ParseRules("rules.yaml", data, cat)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range cat.Categories() {
		for _, a := range cat.Areas() {
			if a.Level != catalog.LevelGrid {
				continue
			}
			rt := table.Route(cat, domain.Case{Grid: a.ID, Category: k.ID, At: wednesdayNoon}, nil)
			if (rt.Outcome == domain.ByRules) == (k.ID == "other") {
				t.Errorf("category %q in %s: %s", k.ID, a.ID, rt.Outcome)
			}
		}
	}
}

func TestARuleSummoningADepartmentWithNoUnitWhereItAppliesIsRefused(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Parse([]byte(`
city: {id: city, name: C, streets: [{id: north, communities: [{id: n1, grids: [n1-01]}]}, {id: south, communities: [{id: s1, grids: [s1-01]}]}]}
departments:
  - {id: squad, name: Squad, units: [{id: squad-north, serves: [north]}]}
  - {id: dispatch-desk, name: Desk}
policies: {danger: {report_in: 30m, resolve: 2h}}
categories: [{id: k, name: K, normal: danger}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := domain.ParseRules("rules.yaml", []byte("rules:\n  - {id: north-only, area: north, lead: squad}\n"), cat); err != nil {
		t.Errorf("a rule where the unit serves: %v", err)
	}
	_, err = domain.ParseRules("rules.yaml", []byte("rules:\n  - {id: everywhere, lead: squad}\n"), cat)
	if err == nil || !strings.Contains(err.Error(), "rules.yaml:2: rule \"everywhere\": no unit of squad serves grid s1-01") {
		t.Errorf("a rule where no unit serves: %v", err)
	}
}
