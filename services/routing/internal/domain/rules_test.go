package domain_test

import (
	"errors"
	"os"
	"strings"
	"testing"

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

const table = `
rules:
  - {id: city-sanitation, category: sanitation, lead: urban-management, assisting: [environment]}
  - {id: hexi-sanitation, category: sanitation, street: hexi, lead: greening}
`

func TestAStreetRuleBeatsTheCityRuleOnlyInItsStreet(t *testing.T) {
	t.Parallel()
	rules, err := domain.ParseRules([]byte(table), sample(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ street, want string }{
		{"hexi", "hexi-sanitation"},
		{"xinhua", "city-sanitation"},
		{"", "city-sanitation"},
	} {
		if r, ok := rules.Match("sanitation", tc.street); !ok || r.ID != tc.want {
			t.Errorf("Match(sanitation, %q) = %q, %v; want %q", tc.street, r.ID, ok, tc.want)
		}
	}
	if r, ok := rules.Match("other", "hexi"); ok {
		t.Errorf("Match(other) = %q; want no rule", r.ID)
	}
}

func TestParseRulesRejectsWhatTheCatalogDoesNotKnow(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ yaml, want string }{
		"an unknown category":   {`rules: [{id: r, category: potholes, lead: water}]`, `category "potholes"`},
		"an unknown department": {`rules: [{id: r, category: noise, lead: police}]`, `department "police"`},
		"an unknown assistant":  {`rules: [{id: r, category: noise, lead: water, assisting: [police]}]`, `department "police"`},
		"an unknown street":     {`rules: [{id: r, category: noise, street: nowhere, lead: water}]`, `street "nowhere"`},
		"a grid as street":      {`rules: [{id: r, category: noise, street: hexi-binjiang-01, lead: water}]`, `street "hexi-binjiang-01"`},
		"no lead":               {`rules: [{id: r, category: noise}]`, `no lead`},
		"a department twice":    {`rules: [{id: r, category: noise, lead: water, assisting: [water]}]`, `twice`},
		"two rules for a key":   {`rules: [{id: a, category: noise, lead: water}, {id: b, category: noise, lead: power}]`, `both match`},
		"a duplicate id":        {`rules: [{id: a, category: noise, lead: water}, {id: a, category: greenery, lead: power}]`, `appears twice`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := domain.ParseRules([]byte(tc.yaml), sample(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseRules = %v; want an error mentioning %s", err, tc.want)
			}
			if strings.Contains(tc.want, `"`) && !errors.Is(err, catalog.ErrUnknown) {
				t.Fatalf("ParseRules = %v; want it to wrap catalog.ErrUnknown", err)
			}
		})
	}
}

func TestTheShippedRulesCoverEveryCategoryButOther(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cat := sample(t)
	rules, err := domain.ParseRules(data, cat)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cat.Categories() {
		_, ok := rules.Match(c.ID, "xinhua")
		if ok == (c.ID == "other") {
			t.Errorf("category %q: matched = %v", c.ID, ok)
		}
	}
}
