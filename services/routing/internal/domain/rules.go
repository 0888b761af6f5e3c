// Package domain holds routing's rules and its view of an issue: which rule sends an issue where,
// and whether the issue still waits for that decision.
package domain

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// Rule sends issues of a category, in one street or in the whole city, to a lead department and
// any assisting ones.
type Rule struct {
	ID        string   `yaml:"id"`
	Category  string   `yaml:"category"`
	Street    string   `yaml:"street"` // empty: every street
	Lead      string   `yaml:"lead"`
	Assisting []string `yaml:"assisting"`
}

// Departments returns the departments the rule summons, lead first.
func (r Rule) Departments() []string { return append([]string{r.Lead}, r.Assisting...) }

// Rules is a validated routing table. It is immutable and safe for concurrent use.
type Rules struct {
	all   []Rule
	byKey map[ruleKey]Rule
}

// ruleKey is what a rule matches on; Street is empty for a city-wide rule.
type ruleKey struct{ Category, Street string }

// ParseRules reads a routing table from YAML and checks it against the catalog: every category,
// street and department must exist, ids must be unique, and no two rules may match the same
// category and street, so that the table never has to choose between rules.
func ParseRules(data []byte, cat *catalog.Catalog) (*Rules, error) {
	var f struct {
		Rules []Rule `yaml:"rules"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse rules: %w", err)
	}
	t := &Rules{byKey: map[ruleKey]Rule{}}
	ids := map[string]bool{}
	var errs []error
	for _, r := range f.Rules {
		if err := check(r, cat); err != nil {
			errs = append(errs, fmt.Errorf("rule %q: %w", r.ID, err))
			continue
		}
		k := ruleKey{r.Category, r.Street}
		if ids[r.ID] {
			errs = append(errs, fmt.Errorf("rule %q appears twice", r.ID))
			continue
		}
		if other, dup := t.byKey[k]; dup {
			errs = append(errs, fmt.Errorf("rules %q and %q both match category %q in street %q", other.ID, r.ID, r.Category, r.Street))
			continue
		}
		ids[r.ID] = true
		t.byKey[k] = r
		t.all = append(t.all, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// check reports what is wrong with one rule on its own.
func check(r Rule, cat *catalog.Catalog) error {
	if r.ID == "" {
		return errors.New("no id")
	}
	if _, err := cat.Category(r.Category); err != nil {
		return err
	}
	if r.Street != "" {
		if a, err := cat.Area(r.Street); err != nil || a.Level != catalog.LevelStreet {
			return fmt.Errorf("street %q: %w", r.Street, catalog.ErrUnknown)
		}
	}
	if r.Lead == "" {
		return errors.New("no lead department")
	}
	seen := map[string]bool{}
	for _, d := range r.Departments() {
		if _, err := cat.Department(d); err != nil {
			return err
		}
		if seen[d] {
			return fmt.Errorf("department %q is summoned twice", d)
		}
		seen[d] = true
	}
	return nil
}

// Match returns the rule for an issue of a category in a street: the street's own rule if there
// is one, else the city-wide rule; false when neither exists.
func (t *Rules) Match(category, street string) (Rule, bool) {
	if r, ok := t.byKey[ruleKey{category, street}]; ok && street != "" {
		return r, true
	}
	r, ok := t.byKey[ruleKey{category, ""}]
	return r, ok
}

// All returns the rules in the order they were written.
func (t *Rules) All() []Rule { return append([]Rule(nil), t.all...) }
