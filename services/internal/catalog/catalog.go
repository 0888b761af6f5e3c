// Package catalog is the vocabulary every Whistle service shares: the area tree (city → street →
// community → grid) with the areas' boundaries and the residential compounds in them, the
// department directory with each department's units and the parts of the tree they serve, and the
// issue categories with their SLA policies. It is loaded from configuration; the sample city in
// city.yaml is the embedded default.
package catalog

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // the city's time zone must load on a machine without a zoneinfo database

	"github.com/paulmach/orb"

	"github.com/whistle-dispatch/whistle/pkg/geo"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

//go:embed city.yaml
var sampleCity []byte

// SampleName is the name the embedded sample city's errors give its file.
const SampleName = "city.yaml"

// CityScope is the scope id that covers the whole city.
const CityScope = "city"

// GridDepartment is the department every catalog has without listing it: the grid workers, one
// unit per grid (with the grid's id), serving their own grid. Routing summons it for the matters
// kept in the grid (小事一格解决), and a grid worker acts for their grid's unit.
const GridDepartment = "grid"

// DeskDepartment is the city dispatch desk, which routing's rules name by default for what waits
// for a dispatcher. A catalog that does not list it gets it, with one unit serving the city.
const DeskDepartment = "dispatch-desk"

// DefaultTimeZone is the city's time zone when its file names none.
const DefaultTimeZone = "Asia/Shanghai"

// Area levels, from the top of the tree down.
const (
	LevelCity      = "city"
	LevelStreet    = "street"
	LevelCommunity = "community"
	LevelGrid      = "grid"
)

// levelBelow is the level of an area's children.
var levelBelow = map[string]string{LevelCity: LevelStreet, LevelStreet: LevelCommunity, LevelCommunity: LevelGrid}

// ErrUnknown is wrapped by every lookup of an id the catalog does not hold.
var ErrUnknown = errors.New("unknown id")

// Area is one node of the area tree.
type Area struct {
	ID, Name, Level, ParentID string
	// Boundary is the area's outline; nil when the catalog gives none.
	Boundary orb.Polygon
}

// Compound is a residential compound (小区): a named place inside one grid.
type Compound struct {
	ID, Name, GridID string
	Boundary         orb.Polygon
}

// Unit is the part of a department that serves part of the area tree: a street's own squad, a
// city bureau. The place picks the unit of a department a rule names.
type Unit struct {
	ID, Name, DepartmentID string
	// Serves are the areas the unit serves, each with everything below it.
	Serves []string
}

// Department is a department that can be summoned, with its units.
type Department struct {
	ID, Name string
	// Units serve parts of the tree; a department listed without units has one, with the
	// department's own id and name, serving the city.
	Units []Unit
}

// Policy is an SLA policy: the time limits, in calendar or working time, the reminders before a
// deadline and the escalation chain after a breach (see sla.Policy).
type Policy = sla.Policy

// Category is a kind of issue with its SLA policy per urgency.
type Category struct {
	ID, Name                  string
	Normal, Urgent, Emergency Policy
}

// Catalog is the loaded vocabulary. It is immutable after Load and safe for concurrent use.
type Catalog struct {
	areas       []Area // parents before children
	areaByID    map[string]Area
	compounds   []Compound
	compByID    map[string]Compound
	departments []Department
	deptByID    map[string]Department
	unitByID    map[string]Unit
	categories  []Category
	catByID     map[string]Category
	grids       *geo.Index // the grids that have a boundary
	places      *geo.Index // the compounds
	zone        *time.Location
	calendar    WorkingTime
	digest      string
}

// Calendar is the city's working calendar, by which policies with working time count: the years
// Whistle ships (see workcal), with plain weeks for the others.
func (c *Catalog) Calendar() WorkingTime { return c.calendar }

// Sample returns the embedded sample city.
func Sample() (*Catalog, error) { return ParseFile(SampleName, sampleCity) }

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
	return parse(filepath.Dir(path), filepath.Base(path), data)
}

// Parse builds a catalog from YAML; its errors call the file "catalog".
func Parse(data []byte) (*Catalog, error) { return ParseFile("catalog", data) }

// ParseFile builds a catalog from the YAML of the named file, refusing a broken one with every
// fault found, each with the file and line: an id empty or used twice, an unknown parent or a
// cycle of parents, a grid whose boundary overlaps another's, a compound outside its grid, a unit
// serving an area that does not exist, a category naming a policy that does not exist.
func ParseFile(name string, data []byte) (*Catalog, error) { return parse("", name, data) }

// parse is ParseFile for a file in dir, against which the city's calendar files are found.
func parse(dir, name string, data []byte) (*Catalog, error) {
	f, err := decodeFile(name, data)
	if err != nil {
		return nil, err
	}
	b := &builder{name: name, lineOf: map[string]int{}, c: &Catalog{
		areaByID: map[string]Area{}, compByID: map[string]Compound{}, deptByID: map[string]Department{},
		unitByID: map[string]Unit{}, catByID: map[string]Category{},
	}}
	sum := sha256.Sum256(data)
	b.c.digest = hex.EncodeToString(sum[:6])
	b.areas(f)
	b.departments(f.Departments)
	b.gridWorkers()
	b.desk()
	b.categories(f)
	b.zone(f.City.V.TimeZone, f.City.Line)
	b.calendar(dir, f.City.V.Calendar, f.City.Line)
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}
	b.c.grids, b.c.places = geo.NewIndex(b.gridShapes()), geo.NewIndex(b.compoundShapes())
	return b.c, nil
}

// Digest identifies the catalog's text: two catalogs with the same digest were read from the same
// bytes. Routing records it, with its rules', in every route.
func (c *Catalog) Digest() string { return c.digest }

// TimeZone is the city's time zone, in which rules read the time of day and the kind of day.
func (c *Catalog) TimeZone() *time.Location { return c.zone }

// Areas returns the area tree, parents before children.
func (c *Catalog) Areas() []Area { return slices.Clone(c.areas) }

// Compounds returns the residential compounds, in the order written.
func (c *Catalog) Compounds() []Compound { return slices.Clone(c.compounds) }

// Departments returns the department directory as the file lists it (GridDepartment is not in it).
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

// Ancestors returns the area and every area above it, nearest first, ending with the city; none
// for an unknown id.
func (c *Catalog) Ancestors(id string) []Area {
	var out []Area
	for a, ok := c.areaByID[id]; ok; a, ok = c.areaByID[a.ParentID] {
		out = append(out, a)
	}
	return out
}

// Department looks up a department by id.
func (c *Catalog) Department(id string) (Department, error) {
	d, ok := c.deptByID[id]
	if !ok {
		return Department{}, fmt.Errorf("department %q: %w", id, ErrUnknown)
	}
	return d, nil
}

// Unit looks up a unit by id.
func (c *Catalog) Unit(id string) (Unit, error) {
	u, ok := c.unitByID[id]
	if !ok {
		return Unit{}, fmt.Errorf("unit %q: %w", id, ErrUnknown)
	}
	return u, nil
}

// ErrNoUnit means no unit of a department serves a place.
var ErrNoUnit = errors.New("no unit of the department serves the place")

// UnitFor picks the unit of a department that serves an area: the one serving the nearest area
// at or above it, the first written on a tie.
func (c *Catalog) UnitFor(departmentID, areaID string) (Unit, error) {
	d, err := c.Department(departmentID)
	if err != nil {
		return Unit{}, err
	}
	for _, a := range c.Ancestors(areaID) {
		for _, u := range d.Units {
			if slices.Contains(u.Serves, a.ID) {
				return u, nil
			}
		}
	}
	return Unit{}, fmt.Errorf("%s in %q: %w", departmentID, areaID, ErrNoUnit)
}

// Serves reports whether a unit serves an area: it serves the area or one above it.
func (c *Catalog) Serves(u Unit, areaID string) bool {
	return slices.ContainsFunc(u.Serves, func(s string) bool { return c.Contains(s, areaID) })
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

// OutsideError is a point that lies in no grid, with the grid nearest to it.
type OutsideError struct {
	Nearest string
	Meters  float64
}

// Error names the nearest grid.
func (e *OutsideError) Error() string {
	if e.Nearest == "" {
		return "the catalog has no grid boundaries to find a point in"
	}
	return fmt.Sprintf("the point lies in no grid; the nearest is %s, %.0f m away", e.Nearest, e.Meters)
}

// Locate finds the grid that contains a point, and the compound if one does; a point in no grid
// is an *OutsideError naming the nearest.
func (c *Catalog) Locate(latitude, longitude float64) (gridID, compoundID string, err error) {
	pt := orb.Point{longitude, latitude}
	grid, ok := c.grids.Locate(pt)
	if !ok {
		nearest, meters := c.grids.Nearest(pt)
		return "", "", &OutsideError{Nearest: nearest, Meters: meters}
	}
	compound, _ := c.places.Locate(pt)
	return grid, compound, nil
}

// ErrNoPlace means an address names no compound of the catalog that can stand for a point: none
// at all, two alike, or one without a boundary.
var ErrNoPlace = errors.New("the address names no residential compound of the city")

// PlaceOfAddress finds the residential compound an address names, and a point inside it that
// stands for it: the compound whose name the address holds, ignoring case. A name held within
// another the address holds gives way to it ("Taoyuan Court East" names that compound, not
// "Taoyuan Court"). Compound names are the one gazetteer the catalog holds: a street number or a
// building cannot be placed more closely than its compound. An address naming no compound, or two,
// wraps ErrNoPlace.
func (c *Catalog) PlaceOfAddress(address string) (compound Compound, latitude, longitude float64, err error) {
	folded := strings.ToLower(address)
	var found []Compound
	for _, cp := range c.compounds {
		if name := strings.ToLower(strings.TrimSpace(cp.Name)); name != "" && strings.Contains(folded, name) {
			found = append(found, cp)
		}
	}
	named := slices.Clone(found)
	found = slices.DeleteFunc(found, func(cp Compound) bool {
		return slices.ContainsFunc(named, func(other Compound) bool {
			return len(other.Name) > len(cp.Name) && strings.Contains(strings.ToLower(other.Name), strings.ToLower(cp.Name))
		})
	})
	switch len(found) {
	case 0:
		return Compound{}, 0, 0, ErrNoPlace
	case 1:
	default:
		return Compound{}, 0, 0, fmt.Errorf("%w: %q names both %s and %s", ErrNoPlace, address, found[0].ID, found[1].ID)
	}
	pt, ok := geo.InteriorPoint(found[0].Boundary)
	// Six decimals (about 0.1 m) are all a place named by a compound can claim.
	if rounded := (orb.Point{roundMicro(pt[0]), roundMicro(pt[1])}); ok && geo.Contains(found[0].Boundary, rounded) {
		pt = rounded
	}
	if !ok {
		return Compound{}, 0, 0, fmt.Errorf("%w: compound %s has no boundary to place it in", ErrNoPlace, found[0].ID)
	}
	return found[0], pt[1], pt[0], nil
}

// roundMicro rounds a coordinate to six decimals.
func roundMicro(v float64) float64 { return math.Round(v*1e6) / 1e6 }
