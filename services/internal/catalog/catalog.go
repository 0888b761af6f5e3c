// Package catalog is the vocabulary every Whistle service shares: the area tree (city → street →
// community → grid), the department directory and the issue categories with their SLA policies.
// It is loaded from configuration; the sample city in city.yaml is the embedded default.
package catalog

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

//go:embed city.yaml
var sampleCity []byte

// CityScope is the scope id that covers the whole city.
const CityScope = "city"

// Area levels, from the top of the tree down.
const (
	LevelCity      = "city"
	LevelStreet    = "street"
	LevelCommunity = "community"
	LevelGrid      = "grid"
)

// ErrUnknown is wrapped by every lookup of an id the catalog does not hold.
var ErrUnknown = errors.New("unknown id")

// Area is one node of the area tree.
type Area struct {
	ID, Name, Level, ParentID string
}

// Department is a department that can be summoned.
type Department struct {
	ID, Name string
}

// Policy is a pair of SLA time limits.
type Policy struct {
	ReportIn time.Duration
	Resolve  time.Duration
}

// Category is a kind of issue with its SLA policy per urgency.
type Category struct {
	ID, Name                  string
	Normal, Urgent, Emergency Policy
}

// Catalog is the loaded vocabulary. It is immutable after Load and safe for concurrent use.
type Catalog struct {
	areas       []Area // parents before children
	areaByID    map[string]Area
	departments []Department
	deptByID    map[string]Department
	categories  []Category
	catByID     map[string]Category
}

// Sample returns the embedded sample city.
func Sample() (*Catalog, error) { return Parse(sampleCity) }

// SampleSource returns the sample city's catalog file, to start a city of one's own from.
func SampleSource() []byte { return slices.Clone(sampleCity) }

// Load reads a catalog file; an empty path means the embedded sample city.
func Load(path string) (*Catalog, error) {
	if path == "" {
		return Sample()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	return Parse(data)
}

type fileFormat struct {
	City struct {
		ID, Name string
		Streets  []struct {
			ID, Name    string
			Communities []struct {
				ID, Name string
				Grids    []string
			}
		}
	}
	Departments []Department
	Policies    map[string]struct {
		ReportIn time.Duration `yaml:"report_in"`
		Resolve  time.Duration `yaml:"resolve"`
	}
	Categories []struct {
		ID, Name                  string
		Normal, Urgent, Emergency string
	}
}

// Parse builds a catalog from YAML, checking that every id is unique and every reference resolves.
func Parse(data []byte) (*Catalog, error) {
	var f fileFormat
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse catalog: %w", err)
	}
	c := &Catalog{areaByID: map[string]Area{}, deptByID: map[string]Department{}, catByID: map[string]Category{}}
	addArea := func(a Area) error {
		if a.ID == "" {
			return fmt.Errorf("catalog: a %s has no id", a.Level)
		}
		if _, dup := c.areaByID[a.ID]; dup {
			return fmt.Errorf("catalog: area %q appears twice", a.ID)
		}
		c.areas = append(c.areas, a)
		c.areaByID[a.ID] = a
		return nil
	}
	if f.City.ID != CityScope {
		return nil, fmt.Errorf("catalog: the city's id must be %q", CityScope)
	}
	errs := []error{addArea(Area{ID: f.City.ID, Name: f.City.Name, Level: LevelCity})}
	for _, s := range f.City.Streets {
		errs = append(errs, addArea(Area{ID: s.ID, Name: s.Name, Level: LevelStreet, ParentID: f.City.ID}))
		for _, cm := range s.Communities {
			errs = append(errs, addArea(Area{ID: cm.ID, Name: cm.Name, Level: LevelCommunity, ParentID: s.ID}))
			for _, g := range cm.Grids {
				errs = append(errs, addArea(Area{ID: g, Name: g, Level: LevelGrid, ParentID: cm.ID}))
			}
		}
	}
	for _, d := range f.Departments {
		if _, dup := c.deptByID[d.ID]; dup || d.ID == "" {
			errs = append(errs, fmt.Errorf("catalog: department %q is empty or appears twice", d.ID))
			continue
		}
		c.departments = append(c.departments, d)
		c.deptByID[d.ID] = d
	}
	policy := func(cat, name string) Policy {
		p, ok := f.Policies[name]
		if !ok || p.ReportIn <= 0 || p.Resolve < p.ReportIn {
			errs = append(errs, fmt.Errorf("catalog: category %q names policy %q, which is missing or has resolve before report-in", cat, name))
		}
		return Policy{ReportIn: p.ReportIn, Resolve: p.Resolve}
	}
	for _, k := range f.Categories {
		if _, dup := c.catByID[k.ID]; dup || k.ID == "" {
			errs = append(errs, fmt.Errorf("catalog: category %q is empty or appears twice", k.ID))
			continue
		}
		cat := Category{ID: k.ID, Name: k.Name, Normal: policy(k.ID, k.Normal)}
		cat.Urgent, cat.Emergency = cat.Normal, policy(k.ID, "danger")
		if k.Urgent != "" {
			cat.Urgent = policy(k.ID, k.Urgent)
		}
		if k.Emergency != "" {
			cat.Emergency = policy(k.ID, k.Emergency)
		}
		c.categories = append(c.categories, cat)
		c.catByID[k.ID] = cat
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Areas returns the area tree, parents before children.
func (c *Catalog) Areas() []Area { return slices.Clone(c.areas) }

// Departments returns the department directory.
func (c *Catalog) Departments() []Department { return slices.Clone(c.departments) }

// Categories returns the categories.
func (c *Catalog) Categories() []Category { return slices.Clone(c.categories) }

// Area looks up an area by id.
func (c *Catalog) Area(id string) (Area, error) {
	a, ok := c.areaByID[id]
	if !ok {
		return Area{}, fmt.Errorf("area %q: %w", id, ErrUnknown)
	}
	return a, nil
}

// Grid looks up a grid and returns the community and street above it.
func (c *Catalog) Grid(id string) (grid, community, street Area, err error) {
	grid, ok := c.areaByID[id]
	if !ok || grid.Level != LevelGrid {
		return Area{}, Area{}, Area{}, fmt.Errorf("grid %q: %w", id, ErrUnknown)
	}
	community = c.areaByID[grid.ParentID]
	street = c.areaByID[community.ParentID]
	return grid, community, street, nil
}

// Department looks up a department by id.
func (c *Catalog) Department(id string) (Department, error) {
	d, ok := c.deptByID[id]
	if !ok {
		return Department{}, fmt.Errorf("department %q: %w", id, ErrUnknown)
	}
	return d, nil
}

// Category looks up a category by id.
func (c *Catalog) Category(id string) (Category, error) {
	k, ok := c.catByID[id]
	if !ok {
		return Category{}, fmt.Errorf("category %q: %w", id, ErrUnknown)
	}
	return k, nil
}

// Policy returns the category's SLA policy for an urgency; unspecified counts as normal.
func (k Category) Policy(u whistlev1.Urgency) Policy {
	switch u {
	case whistlev1.Urgency_URGENCY_URGENT:
		return k.Urgent
	case whistlev1.Urgency_URGENCY_EMERGENCY:
		return k.Emergency
	default:
		return k.Normal
	}
}

// Contains reports whether area id lies within scope (itself or below it). The city scope contains
// every area; an unknown scope or area contains nothing.
func (c *Catalog) Contains(scope, id string) bool {
	if scope == CityScope {
		_, ok := c.areaByID[id]
		return ok
	}
	for a, ok := c.areaByID[id]; ok; a, ok = c.areaByID[a.ParentID] {
		if a.ID == scope {
			return true
		}
	}
	return false
}
