package catalog

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"go.yaml.in/yaml/v3"

	"github.com/whistle-dispatch/whistle/pkg/geo"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
	"github.com/whistle-dispatch/whistle/services/internal/workcal"
)

// at is a value of the file with the line it starts on, so that a fault found after decoding can
// still name its line.
type at[T any] struct {
	V    T
	Line int
}

// UnmarshalYAML decodes the value and keeps its line, refusing a key the value's type does not
// have (a misspelt "serves" must not quietly serve nothing).
func (a *at[T]) UnmarshalYAML(n *yaml.Node) error {
	a.Line = n.Line
	if n.Kind == yaml.MappingNode {
		known := yamlKeys(reflect.TypeFor[T]())
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; known != nil && !known[k.Value] {
				return fmt.Errorf("line %d: unknown field %q", k.Line, k.Value)
			}
		}
	}
	return n.Decode(&a.V)
}

// yamlKeys returns the keys a struct type decodes from, or nil for another type.
func yamlKeys(t reflect.Type) map[string]bool {
	if t.Kind() != reflect.Struct {
		return nil
	}
	keys := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys[name] = true
	}
	return keys
}

// fileFormat is the catalog file. Areas nest under the city (streets, their communities, their
// grids); areas may also be listed flat under areas, each naming its parent, for a city whose
// tree comes from another system's export.
type fileFormat struct {
	City        at[cityFile]               `yaml:"city"`
	Areas       []at[flatArea]             `yaml:"areas"`
	Departments []at[departmentFile]       `yaml:"departments"`
	Chains      map[string]at[[]levelFile] `yaml:"chains"`
	Policies    map[string]at[policyFile]  `yaml:"policies"`
	Categories  []at[categoryFile]         `yaml:"categories"`
}

type cityFile struct {
	ID       string           `yaml:"id"`
	Name     string           `yaml:"name"`
	TimeZone string           `yaml:"timezone"`
	Calendar []string         `yaml:"calendar"`
	Boundary *boundaryFile    `yaml:"boundary"`
	Streets  []at[streetFile] `yaml:"streets"`
}

type streetFile struct {
	ID          string              `yaml:"id"`
	Name        string              `yaml:"name"`
	Boundary    *boundaryFile       `yaml:"boundary"`
	Communities []at[communityFile] `yaml:"communities"`
}

type communityFile struct {
	ID        string             `yaml:"id"`
	Name      string             `yaml:"name"`
	Boundary  *boundaryFile      `yaml:"boundary"`
	Grids     []at[gridFile]     `yaml:"grids"`
	Compounds []at[compoundFile] `yaml:"compounds"`
}

// gridFile is a grid: its id alone, or a mapping with its name and boundary.
type gridFile struct {
	ID       string        `yaml:"id"`
	Name     string        `yaml:"name"`
	Boundary *boundaryFile `yaml:"boundary"`
}

// UnmarshalYAML takes a bare id as a grid with no name and no boundary.
func (g *gridFile) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		g.ID = n.Value
		return nil
	}
	type plain gridFile
	return n.Decode((*plain)(g))
}

type compoundFile struct {
	ID       string        `yaml:"id"`
	Name     string        `yaml:"name"`
	Grid     string        `yaml:"grid"`
	Boundary *boundaryFile `yaml:"boundary"`
}

type flatArea struct {
	ID       string        `yaml:"id"`
	Name     string        `yaml:"name"`
	Parent   string        `yaml:"parent"`
	Boundary *boundaryFile `yaml:"boundary"`
}

// boundaryFile is a GeoJSON Polygon geometry.
type boundaryFile struct {
	Type        string         `yaml:"type"`
	Coordinates [][][2]float64 `yaml:"coordinates"`
}

type departmentFile struct {
	ID    string         `yaml:"id"`
	Name  string         `yaml:"name"`
	Units []at[unitFile] `yaml:"units"`
}

type unitFile struct {
	ID     string   `yaml:"id"`
	Name   string   `yaml:"name"`
	Serves []string `yaml:"serves"`
}

type policyFile struct {
	ReportIn    time.Duration `yaml:"report_in"`
	Resolve     time.Duration `yaml:"resolve"`
	WorkingTime bool          `yaml:"working_time"`
	RemindAt    []int         `yaml:"remind_at"`
	Chain       string        `yaml:"chain"`
}

// levelFile is one level of a chain: {wait: 30m, target: unit-head, repeat: 2}.
type levelFile struct {
	Wait   time.Duration `yaml:"wait"`
	Target string        `yaml:"target"`
	Repeat int           `yaml:"repeat"`
}

type categoryFile struct {
	ID        string `yaml:"id"`
	Name      string `yaml:"name"`
	Normal    string `yaml:"normal"`
	Urgent    string `yaml:"urgent"`
	Emergency string `yaml:"emergency"`
}

// decodeFile reads the YAML, refusing a field the format does not have, with its line.
func decodeFile(name string, data []byte) (*fileFormat, error) {
	var f fileFormat
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &f, nil
}

// builder checks the decoded file into a catalog, collecting every fault with its line.
type builder struct {
	name   string
	c      *Catalog
	errs   []error
	lineOf map[string]int // each area's line
}

// fault records what is wrong at a line of the file.
func (b *builder) fault(line int, format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("%s:%d: %s", b.name, line, fmt.Sprintf(format, args...)))
}

// area adds one area under its parent (already added), with its boundary.
func (b *builder) area(a Area, boundary *boundaryFile, line int) {
	switch _, dup := b.c.areaByID[a.ID]; {
	case a.ID == "":
		b.fault(line, "a %s has no id", a.Level)
		return
	case dup:
		b.fault(line, "area %q appears twice", a.ID)
		return
	}
	if a.Name == "" {
		a.Name = a.ID
	}
	a.Boundary = b.polygon(boundary, line, "area "+a.ID)
	b.lineOf[a.ID] = line
	b.c.areas = append(b.c.areas, a)
	b.c.areaByID[a.ID] = a
}

// polygon reads a boundary; nil for none or for a broken one, which is recorded.
func (b *builder) polygon(bf *boundaryFile, line int, what string) orb.Polygon {
	if bf == nil {
		return nil
	}
	if bf.Type != "Polygon" {
		b.fault(line, "%s: a boundary must be a GeoJSON Polygon, not %q", what, bf.Type)
		return nil
	}
	p, err := geo.NewPolygon(bf.Coordinates)
	if err != nil {
		b.fault(line, "%s: %v", what, err)
		return nil
	}
	return p
}

// areas builds the tree: the nested city, then the flat areas under the parents they name,
// refusing a parent that does not exist and parents that name each other in a cycle, and then
// the compounds and the grids' boundaries.
func (b *builder) areas(f *fileFormat) {
	city := f.City.V
	if city.ID != CityScope {
		b.fault(f.City.Line, "the city's id must be %q", CityScope)
	}
	b.area(Area{ID: CityScope, Name: city.Name, Level: LevelCity}, city.Boundary, f.City.Line)
	var compounds []at[compoundFile]
	for _, s := range city.Streets {
		b.area(Area{ID: s.V.ID, Name: s.V.Name, Level: LevelStreet, ParentID: CityScope}, s.V.Boundary, s.Line)
		for _, cm := range s.V.Communities {
			b.area(Area{ID: cm.V.ID, Name: cm.V.Name, Level: LevelCommunity, ParentID: s.V.ID}, cm.V.Boundary, cm.Line)
			for _, g := range cm.V.Grids {
				b.area(Area{ID: g.V.ID, Name: g.V.Name, Level: LevelGrid, ParentID: cm.V.ID}, g.V.Boundary, g.Line)
			}
			compounds = append(compounds, cm.V.Compounds...)
		}
	}
	b.flatAreas(f.Areas)
	for _, cf := range compounds {
		b.compound(cf)
	}
	b.checkBoundaries()
}

// flatAreas adds the areas listed flat, each once its parent is in the tree; what never finds
// its parent names one that does not exist, or lies on a cycle of parents.
func (b *builder) flatAreas(flat []at[flatArea]) {
	waiting := flat
	for len(waiting) > 0 {
		var still []at[flatArea]
		for _, fa := range waiting {
			parent, ok := b.c.areaByID[fa.V.Parent]
			if !ok {
				still = append(still, fa)
				continue
			}
			level, ok := levelBelow[parent.Level]
			if !ok {
				b.fault(fa.Line, "area %q: its parent %q is a grid, which has no areas below it", fa.V.ID, fa.V.Parent)
				continue
			}
			b.area(Area{ID: fa.V.ID, Name: fa.V.Name, Level: level, ParentID: parent.ID}, fa.V.Boundary, fa.Line)
		}
		if len(still) == len(waiting) {
			named := map[string]bool{}
			for _, fa := range still {
				named[fa.V.ID] = true
			}
			for _, fa := range still {
				if named[fa.V.Parent] {
					b.fault(fa.Line, "area %q: its parents form a cycle through %q", fa.V.ID, fa.V.Parent)
				} else {
					b.fault(fa.Line, "area %q: unknown parent %q", fa.V.ID, fa.V.Parent)
				}
			}
			return
		}
		waiting = still
	}
}

// compound adds a residential compound, which must lie in a grid of the tree.
func (b *builder) compound(cf at[compoundFile]) {
	c := Compound{ID: cf.V.ID, Name: cf.V.Name, GridID: cf.V.Grid}
	grid, ok := b.c.areaByID[c.GridID]
	_, dupArea := b.c.areaByID[c.ID]
	_, dup := b.c.compByID[c.ID]
	switch {
	case c.ID == "":
		b.fault(cf.Line, "a compound has no id")
		return
	case dup || dupArea:
		b.fault(cf.Line, "compound %q: the id is taken", c.ID)
		return
	case !ok || grid.Level != LevelGrid:
		b.fault(cf.Line, "compound %q: unknown grid %q", c.ID, c.GridID)
		return
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	c.Boundary = b.polygon(cf.V.Boundary, cf.Line, "compound "+c.ID)
	if c.Boundary != nil && grid.Boundary != nil && !geo.Within(c.Boundary, grid.Boundary) {
		b.fault(cf.Line, "compound %q lies outside its grid %q", c.ID, c.GridID)
	}
	b.c.compounds = append(b.c.compounds, c)
	b.c.compByID[c.ID] = c
}

// checkBoundaries refuses grids whose boundaries overlap, so that a point lies in one grid only,
// and a child outside its parent's boundary.
func (b *builder) checkBoundaries() {
	lines := b.lineOf
	var grids []Area
	for _, a := range b.c.areas {
		if a.Boundary == nil {
			continue
		}
		if p := b.c.areaByID[a.ParentID]; p.Boundary != nil && !geo.Within(a.Boundary, p.Boundary) {
			b.fault(lines[a.ID], "%s %q lies outside its %s %q", a.Level, a.ID, p.Level, p.ID)
		}
		if a.Level == LevelGrid {
			grids = append(grids, a)
		}
	}
	for i, g := range grids {
		for _, h := range grids[i+1:] {
			if g.Boundary.Bound().Intersects(h.Boundary.Bound()) && geo.Overlap(g.Boundary, h.Boundary) {
				b.fault(lines[h.ID], "grid %q overlaps grid %q", h.ID, g.ID)
			}
		}
	}
}

// gridWorkers adds GridDepartment, with a unit for each grid.
func (b *builder) gridWorkers() {
	d := Department{ID: GridDepartment, Name: "Grid workers"}
	for _, a := range b.c.areas {
		if a.Level == LevelGrid {
			u := Unit{ID: a.ID, Name: a.Name, DepartmentID: GridDepartment, Serves: []string{a.ID}}
			d.Units = append(d.Units, u)
			b.c.unitByID[u.ID] = u
		}
	}
	b.c.deptByID[d.ID] = d
}

// desk adds DeskDepartment when the file does not list it.
func (b *builder) desk() {
	if _, ok := b.c.deptByID[DeskDepartment]; ok {
		return
	}
	u := Unit{ID: DeskDepartment, Name: "City Dispatch Desk", DepartmentID: DeskDepartment, Serves: []string{CityScope}}
	if _, taken := b.c.unitByID[u.ID]; taken {
		return // a unit has the id: the rules must name the desk they use
	}
	d := Department{ID: DeskDepartment, Name: u.Name, Units: []Unit{u}}
	b.c.departments = append(b.c.departments, d)
	b.c.deptByID[d.ID], b.c.unitByID[u.ID] = d, u
}

// departments adds the directory and its units. A unit's id is unique among units and never
// another department's id; a unit serves areas that exist.
func (b *builder) departments(ds []at[departmentFile]) {
	for _, df := range ds {
		d := Department{ID: df.V.ID, Name: df.V.Name}
		if d.ID == GridDepartment {
			b.fault(df.Line, "department %q is the grid workers', which every catalog has: choose another id", d.ID)
			continue
		}
		if _, dup := b.c.deptByID[d.ID]; dup || d.ID == "" {
			b.fault(df.Line, "department %q is empty or appears twice", d.ID)
			continue
		}
		b.c.deptByID[d.ID] = d // reserved now, so that no unit takes the id
	}
	for _, df := range ds {
		d, ok := b.c.deptByID[df.V.ID]
		if !ok || slices.ContainsFunc(b.c.departments, func(x Department) bool { return x.ID == d.ID }) {
			continue // refused above, or the second of two with one id
		}
		if len(df.V.Units) == 0 {
			d.Units = []Unit{{ID: d.ID, Name: d.Name, DepartmentID: d.ID, Serves: []string{CityScope}}}
		}
		for _, uf := range df.V.Units {
			u := Unit{ID: uf.V.ID, Name: uf.V.Name, DepartmentID: d.ID, Serves: uf.V.Serves}
			_, dup := b.c.unitByID[u.ID]
			_, isArea := b.c.areaByID[u.ID]
			dup = dup || isArea
			other, isDept := b.c.deptByID[u.ID]
			switch {
			case u.ID == "":
				b.fault(uf.Line, "a unit of %q has no id", d.ID)
				continue
			case dup || isDept && other.ID != d.ID:
				b.fault(uf.Line, "unit %q: the id is taken", u.ID)
				continue
			case len(u.Serves) == 0:
				b.fault(uf.Line, "unit %q serves no area", u.ID)
				continue
			}
			for _, a := range u.Serves {
				if _, ok := b.c.areaByID[a]; !ok {
					b.fault(uf.Line, "unit %q serves unknown area %q", u.ID, a)
				}
			}
			if u.Name == "" {
				u.Name = u.ID
			}
			d.Units = append(d.Units, u)
		}
		for _, u := range d.Units {
			b.c.unitByID[u.ID] = u
		}
		b.c.departments = append(b.c.departments, d)
		b.c.deptByID[d.ID] = d
	}
}

// categories adds the categories with their policies; an urgency left out takes the normal
// policy, except emergency, which falls back to the policy named danger.
func (b *builder) categories(f *fileFormat) {
	policies := map[string]Policy{}
	for name, p := range f.Policies {
		if p.V.ReportIn <= 0 || p.V.Resolve < p.V.ReportIn {
			b.fault(p.Line, "policy %q has no report-in limit or resolves before it reports in", name)
		}
		pol := Policy{Name: name, ReportIn: p.V.ReportIn, Resolve: p.V.Resolve, WorkingTime: p.V.WorkingTime, RemindAt: p.V.RemindAt}
		if p.V.Chain != "" {
			chain, ok := f.Chains[p.V.Chain]
			if !ok {
				b.fault(p.Line, "policy %q names chain %q, which does not exist", name, p.V.Chain)
			}
			for _, l := range chain.V {
				pol.Chain = append(pol.Chain, sla.Level{Wait: l.Wait, Target: sla.Target(l.Target), Repeat: l.Repeat})
			}
		}
		if err := pol.Check(); err != nil {
			b.fault(p.Line, "policy %q: %v", name, err)
		}
		policies[name] = pol
	}
	policy := func(line int, cat, name string) Policy {
		p, ok := policies[name]
		if !ok {
			b.fault(line, "category %q names policy %q, which does not exist", cat, name)
		}
		return p
	}
	for _, kf := range f.Categories {
		k := kf.V
		if _, dup := b.c.catByID[k.ID]; dup || k.ID == "" {
			b.fault(kf.Line, "category %q is empty or appears twice", k.ID)
			continue
		}
		cat := Category{ID: k.ID, Name: k.Name, Normal: policy(kf.Line, k.ID, k.Normal)}
		cat.Urgent, cat.Emergency = cat.Normal, Policy{}
		if k.Urgent != "" {
			cat.Urgent = policy(kf.Line, k.ID, k.Urgent)
		}
		emergency := k.Emergency
		if emergency == "" {
			emergency = "danger"
		}
		cat.Emergency = policy(kf.Line, k.ID, emergency)
		b.c.categories = append(b.c.categories, cat)
		b.c.catByID[k.ID] = cat
	}
}

// zone loads the city's time zone.
func (b *builder) zone(name string, line int) {
	if name == "" {
		name = DefaultTimeZone
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		b.fault(line, "time zone %q: %v", name, err)
		return
	}
	b.c.zone = z
}

// calendar loads the city's working calendar: the years Whistle ships, and the city's own year
// files or folders (relative to the catalog's folder) beside them, a city's year replacing a
// shipped one.
func (b *builder) calendar(dir string, paths []string, line int) {
	if len(paths) == 0 {
		cal, err := embeddedWorkingTime()
		if err != nil {
			b.fault(line, "working calendar: %v", err)
		}
		b.c.calendar = cal
		return
	}
	for i, p := range paths {
		if !filepath.IsAbs(p) {
			paths[i] = filepath.Join(dir, p)
		}
	}
	cal, err := workcal.Load(paths...)
	if err != nil {
		b.fault(line, "working calendar: %v", err)
		return
	}
	b.c.calendar = NewWorkingTime(cal)
}

// gridShapes are the grids that have a boundary, for finding a point's grid.
func (b *builder) gridShapes() []geo.Area {
	var out []geo.Area
	for _, a := range b.c.areas {
		if a.Level == LevelGrid && a.Boundary != nil {
			out = append(out, geo.Area{ID: a.ID, Boundary: a.Boundary})
		}
	}
	return out
}

// compoundShapes are the compounds that have a boundary.
func (b *builder) compoundShapes() []geo.Area {
	var out []geo.Area
	for _, c := range b.c.compounds {
		if c.Boundary != nil {
			out = append(out, geo.Area{ID: c.ID, Boundary: c.Boundary})
		}
	}
	return out
}
