package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
	"go.yaml.in/yaml/v3"

	"github.com/whistle-dispatch/whistle/pkg/geo"
)

// committed is the city file the catalog embeds, which this program must have written.
const committed = "../city.yaml"

// geometry is a boundary as the file writes it.
type geometry struct {
	Type        string
	Coordinates [][][2]float64
}

// area is what every level of the tree has in common.
type area struct {
	ID, Name string
	Boundary *geometry
}

// cityFile is the city file as a reader of the new format sees it, decoded independently of the
// generator's own types so that the test checks the file and not the program's intent.
type cityFile struct {
	City struct {
		area     `yaml:",inline"`
		Timezone string
		Streets  []struct {
			area        `yaml:",inline"`
			Communities []struct {
				area      `yaml:",inline"`
				Grids     []area
				Compounds []struct {
					area `yaml:",inline"`
					Grid string
				}
			}
		}
	}
	Departments []struct {
		ID, Name string
		Units    []struct {
			ID, Name string
			Serves   []string
		}
	}
	Policies map[string]struct {
		ReportIn string `yaml:"report_in"`
		Resolve  string
	}
	Categories []struct {
		ID, Name, Normal, Urgent, Emergency string
	}
}

// load decodes the committed city file.
func load(t *testing.T) cityFile {
	t.Helper()
	data, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	var f cityFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("decode %s: %v", committed, err)
	}
	return f
}

// polygon checks a boundary with geo.NewPolygon, which also refuses one that crosses itself.
func polygon(t *testing.T, a area) orb.Polygon {
	t.Helper()
	if a.Boundary == nil {
		t.Fatalf("%s has no boundary", a.ID)
	}
	if a.Boundary.Type != "Polygon" {
		t.Fatalf("%s's boundary has type %q, want Polygon", a.ID, a.Boundary.Type)
	}
	p, err := geo.NewPolygon(a.Boundary.Coordinates)
	if err != nil {
		t.Fatalf("%s: %v", a.ID, err)
	}
	if len(p) != 1 || len(p[0]) != 5 {
		t.Fatalf("%s's boundary has %d rings, the first of %d positions; want one ring of 5", a.ID, len(p), len(p[0]))
	}
	return p
}

// tree is the decoded city with every boundary checked and made a polygon.
type tree struct {
	city        orb.Polygon
	streets     []node
	communities []node
	grids       []node
	compounds   []node
}

// node is an area with its parent: a street's is the city, a compound's is its grid.
type node struct {
	id, parent string
	boundary   orb.Polygon
}

func build(t *testing.T, f cityFile) tree {
	t.Helper()
	tr := tree{city: polygon(t, f.City.area)}
	for _, s := range f.City.Streets {
		tr.streets = append(tr.streets, node{s.ID, f.City.ID, polygon(t, s.area)})
		for _, c := range s.Communities {
			tr.communities = append(tr.communities, node{c.ID, s.ID, polygon(t, c.area)})
			for _, g := range c.Grids {
				tr.grids = append(tr.grids, node{g.ID, c.ID, polygon(t, g)})
			}
			for _, k := range c.Compounds {
				if !slices.ContainsFunc(c.Grids, func(g area) bool { return g.ID == k.Grid }) {
					t.Errorf("compound %s names grid %q, which is not a grid of its community %s", k.ID, k.Grid, c.ID)
				}
				tr.compounds = append(tr.compounds, node{k.ID, k.Grid, polygon(t, k.area)})
			}
		}
	}
	return tr
}

func TestTheCommittedCityIsWhatTheGeneratorWrites(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "city.yaml")
	if err := run([]string{"-o", out}, io.Discard); err != nil {
		t.Fatalf("run: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what samplegen writes; run go generate ./services/internal/catalog", committed)
	}
}

func TestTheGeneratorWritesToStandardOutputWithoutAFlag(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if err := run(nil, &stdout); err != nil {
		t.Fatalf("run: %v", err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Fatal("standard output differs from the committed city")
	}
}

func TestTheCityHasThreeStreetsOf11CommunitiesAnd97GridsAnd78Compounds(t *testing.T) {
	t.Parallel()
	f := load(t)
	tr := build(t, f)
	if f.City.ID != "city" || f.City.Name != "Lianhua City" || f.City.Timezone != "Asia/Shanghai" {
		t.Errorf("city = %q %q %q", f.City.ID, f.City.Name, f.City.Timezone)
	}
	if got := [4]int{len(tr.streets), len(tr.communities), len(tr.grids), len(tr.compounds)}; got != [4]int{3, 33, 97, 78} {
		t.Errorf("streets, communities, grids, compounds = %v, want [3 33 97 78]", got)
	}
	wantStreets := [][2]string{{"xinhua", "Xinhua Street"}, {"dongfeng", "Dongfeng Street"}, {"hexi", "Hexi Street"}}
	for i, s := range f.City.Streets {
		if i < len(wantStreets) && [2]string{s.ID, s.Name} != wantStreets[i] {
			t.Errorf("street %d = %s %q, want %v", i, s.ID, s.Name, wantStreets[i])
		}
		if len(s.Communities) != 11 {
			t.Errorf("street %s has %d communities, want 11", s.ID, len(s.Communities))
		}
	}
	header := fmt.Sprintf("3 streets, 33\n# communities, 97 grids and 78 residential compounds with their boundaries, the %d departments",
		len(f.Departments))
	if data, _ := os.ReadFile(committed); !bytes.Contains(data, []byte(header)) {
		t.Errorf("the header comment does not state the counts as %q", header)
	}
}

func TestTheFirstVersionsAreasKeepTheirIdsAndNames(t *testing.T) {
	t.Parallel()
	f := load(t)
	communities := map[string]string{}
	grids := map[string]string{} // grid id -> community id
	for _, s := range f.City.Streets {
		for _, c := range s.Communities {
			communities[c.ID] = s.ID + " " + c.Name
			for _, g := range c.Grids {
				grids[g.ID] = c.ID
			}
		}
	}
	for id, want := range map[string]string{
		"xinhua-taoyuan":   "xinhua Taoyuan Community",
		"xinhua-hebin":     "xinhua Hebin Community",
		"dongfeng-jinqiao": "dongfeng Jinqiao Community",
		"dongfeng-yuanlin": "dongfeng Yuanlin Community",
		"hexi-binjiang":    "hexi Binjiang Community",
	} {
		if communities[id] != want {
			t.Errorf("community %s = %q, want %q", id, communities[id], want)
		}
	}
	for _, id := range []string{
		"xinhua-taoyuan-01", "xinhua-taoyuan-02", "xinhua-taoyuan-03", "xinhua-hebin-01", "xinhua-hebin-02",
		"dongfeng-jinqiao-01", "dongfeng-jinqiao-02", "dongfeng-yuanlin-01", "dongfeng-yuanlin-02",
		"hexi-binjiang-01", "hexi-binjiang-02",
	} {
		if c, want := grids[id], id[:len(id)-3]; c != want {
			t.Errorf("grid %s is in community %q, want %q", id, c, want)
		}
	}
}

func TestEveryIdIsUniqueAndEveryGridIsNamedAfterItsCommunity(t *testing.T) {
	t.Parallel()
	f := load(t)
	seen := map[string]bool{f.City.ID: true}
	add := func(id string) {
		if seen[id] {
			t.Errorf("id %q appears twice", id)
		}
		seen[id] = true
	}
	for _, s := range f.City.Streets {
		add(s.ID)
		for _, c := range s.Communities {
			add(c.ID)
			for i, g := range c.Grids {
				add(g.ID)
				if want := fmt.Sprintf("%s-%02d", c.ID, i+1); g.ID != want {
					t.Errorf("grid %d of %s is %s, want %s", i+1, c.ID, g.ID, want)
				}
			}
			for _, k := range c.Compounds {
				add(k.ID)
			}
		}
	}
}

func TestNoTwoGridsOverlap(t *testing.T) {
	t.Parallel()
	tr := build(t, load(t))
	for i, a := range tr.grids {
		for _, b := range tr.grids[i+1:] {
			if geo.Overlap(a.boundary, b.boundary) {
				t.Errorf("grids %s and %s overlap", a.id, b.id)
			}
		}
	}
}

func TestEveryAreaLiesWithinItsParentAndTheChildrenCoverIt(t *testing.T) {
	t.Parallel()
	tr := build(t, load(t))
	byID := map[string]orb.Polygon{"city": tr.city}
	for _, level := range [][]node{tr.streets, tr.communities, tr.grids} {
		for _, n := range level {
			byID[n.id] = n.boundary
		}
	}
	for _, level := range [][]node{tr.streets, tr.communities, tr.grids, tr.compounds} {
		for _, n := range level {
			if !geo.Within(n.boundary, byID[n.parent]) {
				t.Errorf("%s is not within %s", n.id, n.parent)
			}
		}
	}
	for _, level := range [][]node{tr.streets, tr.communities} { // grids in TestNoTwoGridsOverlap
		for i, n := range level {
			for _, m := range level[i+1:] {
				if geo.Overlap(n.boundary, m.boundary) {
					t.Errorf("%s and %s overlap", n.id, m.id)
				}
			}
		}
	}
	// Children within their parent that do not overlap cover it without a gap exactly when their
	// areas add up to its area.
	for _, level := range [][]node{tr.streets, tr.communities, tr.grids} {
		sum := map[string]float64{}
		for _, n := range level {
			sum[n.parent] += planar.Area(n.boundary)
		}
		for parent, s := range sum {
			if want := planar.Area(byID[parent]); math.Abs(s-want) > 1e-9*want {
				t.Errorf("the children of %s cover %g square degrees of its %g", parent, s, want)
			}
		}
	}
}

func TestEveryCompoundLiesStrictlyInsideItsGrid(t *testing.T) {
	t.Parallel()
	tr := build(t, load(t))
	grids := map[string]orb.Polygon{}
	for _, g := range tr.grids {
		grids[g.id] = g.boundary
	}
	for i, k := range tr.compounds {
		grid := grids[k.parent]
		if !geo.Within(k.boundary, grid) {
			t.Errorf("compound %s is not within grid %s", k.id, k.parent)
		}
		for _, v := range k.boundary[0] {
			if d := planar.DistanceFrom(orb.LineString(grid[0]), v); d == 0 {
				t.Errorf("compound %s touches the edge of grid %s at %v", k.id, k.parent, v)
			}
		}
		for _, other := range tr.compounds[i+1:] {
			if geo.Overlap(k.boundary, other.boundary) {
				t.Errorf("compounds %s and %s overlap", k.id, other.id)
			}
		}
	}
}

func TestPositionsAreLocatedInTheExpectedGrid(t *testing.T) {
	t.Parallel()
	tr := build(t, load(t))
	areas := make([]geo.Area, len(tr.grids))
	for i, g := range tr.grids {
		areas[i] = geo.Area{ID: g.id, Boundary: g.boundary}
	}
	x := geo.NewIndex(areas)
	tests := []struct {
		name string
		pt   orb.Point
		want string // "" when no grid holds the position
	}{
		{"the north-west corner of the city is in Taoyuan's first grid", orb.Point{110.3000, 22.7400}, "xinhua-taoyuan-01"},
		{"a position inside Taoyuan's first grid is found in it", orb.Point{110.3050, 22.7360}, "xinhua-taoyuan-01"},
		{"a position on the edge between Taoyuan's first two grids is found in the first",
			orb.Point{110.3116, 22.7350}, "xinhua-taoyuan-01"},
		{"a position on the edge between Taoyuan and Hebin is found in Taoyuan, listed first",
			orb.Point{110.3050, 22.7328}, "xinhua-taoyuan-01"},
		{"a position just east of the Xinhua-Dongfeng boundary is in Dongfeng", orb.Point{110.3351, 22.7390}, "dongfeng-jinqiao-01"},
		{"a position in Binjiang's second grid is found in it", orb.Point{110.3900, 22.7370}, "hexi-binjiang-02"},
		{"the south-east corner of the city is in the last grid of the last community", orb.Point{110.4000, 22.6600}, "hexi-qiaotou-03"},
		{"a position east of the city is in no grid", orb.Point{110.4100, 22.7000}, ""},
		{"a position south of the city is in no grid", orb.Point{110.3500, 22.6500}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, ok := x.Locate(tt.pt)
			if id != tt.want || ok != (tt.want != "") {
				t.Fatalf("Locate(%v) = %q, %v; want %q", tt.pt, id, ok, tt.want)
			}
		})
	}
	for _, k := range tr.compounds {
		c := k.boundary.Bound().Center()
		if id, _ := x.Locate(c); id != k.parent {
			t.Errorf("the middle of compound %s, %v, is located in %q, want its grid %s", k.id, c, id, k.parent)
		}
	}
	// 0.01° of longitude at 22.7°N is about 1027 m.
	if id, m := x.Nearest(orb.Point{110.4100, 22.7000}); id != "hexi-lingang-03" || m < 1020 || m > 1035 {
		t.Errorf("Nearest east of the city = %q at %.0f m, want hexi-lingang-03 about 1027 m away", id, m)
	}
}

func TestDepartmentsKeepTheirIdsAndTheirUnitsAreDistinct(t *testing.T) {
	t.Parallel()
	f := load(t)
	names := map[string]string{}
	units := map[string][]string{}
	for _, d := range f.Departments {
		names[d.ID] = d.Name
		for _, u := range d.Units {
			units[d.ID] = append(units[d.ID], u.ID)
		}
	}
	for id, want := range map[string]string{
		"urban-management": "Urban Management Bureau", "housing": "Housing and Construction Bureau",
		"water": "Water Affairs Bureau", "power": "Power Supply Company", "gas": "Gas Company",
		"environment": "Ecology and Environment Bureau", "market-regulation": "Market Regulation Bureau",
		"public-security": "Public Security Bureau", "fire-rescue": "Fire and Rescue Brigade",
		"transport": "Transport Bureau", "civil-affairs": "Civil Affairs Bureau", "justice": "Justice Bureau",
		"emergency": "Emergency Management Bureau", "greening": "Landscaping and Greening Bureau",
		"health": "Health Commission", "legal-team": "Judges-Prosecutors-Police-Lawyers Team",
		"street-government": "Street Government", "dispatch-desk": "City Dispatch Desk",
	} {
		if names[id] != want {
			t.Errorf("department %s is named %q, want %q", id, names[id], want)
		}
	}
	if len(f.Departments) != 18 {
		t.Errorf("%d departments, want 18", len(f.Departments))
	}
	for dept, want := range map[string][]string{
		"urban-management":  {"urban-management-xinhua", "urban-management-dongfeng", "urban-management-hexi", "urban-management-city"},
		"public-security":   {"public-security-xinhua", "public-security-dongfeng", "public-security-hexi", "public-security-city"},
		"market-regulation": {"market-regulation-xinhua", "market-regulation-dongfeng", "market-regulation-hexi", "market-regulation-city"},
		"legal-team":        {"legal-team-xinhua", "legal-team-dongfeng", "legal-team-hexi"},
		"street-government": {"street-government-xinhua", "street-government-dongfeng", "street-government-hexi"},
		"dispatch-desk":     {"dispatch-desk"},
		"health":            nil,
		"greening":          nil,
	} {
		if !slices.Equal(units[dept], want) {
			t.Errorf("department %s has units %v, want %v", dept, units[dept], want)
		}
	}

	areas := map[string]bool{f.City.ID: true}
	for _, s := range f.City.Streets {
		areas[s.ID] = true
	}
	seen := map[string]string{} // unit id -> its department
	for _, d := range f.Departments {
		for _, u := range d.Units {
			if other, dup := seen[u.ID]; dup {
				t.Errorf("unit %s appears in %s and in %s", u.ID, other, d.ID)
			}
			seen[u.ID] = d.ID
			if _, isDept := names[u.ID]; isDept && u.ID != d.ID {
				t.Errorf("unit %s of %s has another department's id", u.ID, d.ID)
			}
			if len(u.Serves) == 0 {
				t.Errorf("unit %s serves nothing", u.ID)
			}
			for _, a := range u.Serves {
				if !areas[a] {
					t.Errorf("unit %s serves %q, which is neither the city nor a street", u.ID, a)
				}
			}
		}
	}
}

func TestTheCategoriesAndPoliciesAreKept(t *testing.T) {
	t.Parallel()
	f := load(t)
	var ids []string
	for _, c := range f.Categories {
		ids = append(ids, c.ID)
		for _, p := range []string{c.Normal, c.Urgent, c.Emergency} {
			if _, ok := f.Policies[p]; p != "" && !ok {
				t.Errorf("category %s names the missing policy %q", c.ID, p)
			}
		}
	}
	want := []string{"gas-leak", "fire-hazard", "dangerous-building", "water-supply", "power-outage", "blocked-drain",
		"unsafe-stall", "road-damage", "noise", "sanitation", "greenery", "neighbour-dispute", "public-order",
		"illegal-construction", "other"}
	if !slices.Equal(ids, want) {
		t.Errorf("categories %v, want %v", ids, want)
	}
	if len(f.Policies) != 6 {
		t.Errorf("%d policies, want 6", len(f.Policies))
	}
}
