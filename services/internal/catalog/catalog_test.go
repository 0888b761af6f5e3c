package catalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/sla"
)

func TestTheSampleCityLoadsWithItsPolicies(t *testing.T) {
	c, err := Sample()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Departments()); n < 12 {
		t.Errorf("departments = %d, want at least a dozen", n)
	}
	gas, err := c.Category("gas-leak")
	if err != nil {
		t.Fatal(err)
	}
	if p := gas.Policy(whistlev1.Urgency_URGENCY_NORMAL); p.ReportIn != 30*time.Minute || p.Resolve != 2*time.Hour {
		t.Errorf("gas-leak policy = %+v, want 30m/2h", p)
	}
	water, _ := c.Category("water-supply")
	if p := water.Policy(whistlev1.Urgency_URGENCY_UNSPECIFIED); p.Resolve != 24*time.Hour {
		t.Errorf("water-supply resolve = %v, want 24h", p.Resolve)
	}
	if p := water.Policy(whistlev1.Urgency_URGENCY_EMERGENCY); p.Resolve != 2*time.Hour {
		t.Errorf("emergency falls back to danger, got %v", p.Resolve)
	}
	cx, _ := c.Category("illegal-construction")
	if cx.Normal.Resolve != 15*(7*time.Hour+30*time.Minute) || !cx.Normal.WorkingTime {
		t.Errorf("complex resolve = %v in working time %v, want 15 working days of 7.5 hours", cx.Normal.Resolve, cx.Normal.WorkingTime)
	}
	gas, _ = c.Category("gas-leak")
	if p := gas.Normal; !slices.Equal(p.RemindAt, []int{50, 80}) || len(p.Chain) != 4 || p.Chain[3].Target != sla.CitySupervisor || p.Chain[3].Repeat != 3 {
		t.Errorf("danger's reminders %v and chain %+v, want 50 and 80 percent and the urgent chain", p.RemindAt, p.Chain)
	}
}

func TestScopesContainWhatLiesBelowThem(t *testing.T) {
	c, err := Sample()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		scope, id string
		want      bool
	}{
		{"city", "xinhua-taoyuan-01", true},
		{"xinhua", "xinhua-taoyuan-01", true},
		{"xinhua-taoyuan", "xinhua-taoyuan-01", true},
		{"xinhua-taoyuan-01", "xinhua-taoyuan-01", true},
		{"dongfeng", "xinhua-taoyuan-01", false},
		{"xinhua-taoyuan-02", "xinhua-taoyuan-01", false},
		{"city", "nowhere", false},
		{"water", "xinhua-taoyuan-01", false},
	}
	for _, tt := range tests {
		if got := c.Contains(tt.scope, tt.id); got != tt.want {
			t.Errorf("Contains(%q, %q) = %v, want %v", tt.scope, tt.id, got, tt.want)
		}
	}
	_, community, street, err := c.Grid("hexi-binjiang-02")
	if err != nil || community.ID != "hexi-binjiang" || street.ID != "hexi" {
		t.Errorf("Grid(hexi-binjiang-02) = %v %v %v", community, street, err)
	}
	if _, _, _, err := c.Grid("hexi"); err == nil {
		t.Error("a street is not a grid")
	}
}

func TestABrokenCatalogIsRefusedNamingTheFileAndLine(t *testing.T) {
	t.Parallel()
	const city = "city: {id: city, name: X, streets: [{id: s, communities: [{id: c, grids: [g]}]}]}\n"
	const head = city + "policies: {danger: {report_in: 30m, resolve: 2h}}\n"
	square := func(x0, y0, x1, y1 float64) string {
		return fmt.Sprintf("{type: Polygon, coordinates: [[[%g, %g], [%g, %g], [%g, %g], [%g, %g], [%g, %g]]]}", x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"a duplicate id":         {head + "areas:\n  - {id: g, parent: c}\n", `catalog:4: area "g" appears twice`},
		"an unknown parent":      {head + "areas:\n  - {id: g2, parent: nowhere}\n", `catalog:4: area "g2": unknown parent "nowhere"`},
		"a cycle":                {head + "areas:\n  - {id: a, parent: b}\n  - {id: b, parent: a}\n", `catalog:5: area "b": its parents form a cycle through "a"`},
		"below a grid":           {head + "areas:\n  - {id: x, parent: g}\n", `its parent "g" is a grid`},
		"a missing policy":       {head + "categories:\n  - {id: k, name: K, normal: slow}\n", `catalog:4: category "k" names policy "slow", which does not exist`},
		"an unknown unit area":   {head + "departments:\n  - id: d\n    units:\n      - {id: d-x, serves: [atlantis]}\n", `catalog:6: unit "d-x" serves unknown area "atlantis"`},
		"a unit id taken":        {head + "departments:\n  - {id: e}\n  - id: d\n    units: [{id: e, serves: [city]}]\n", `unit "e": the id is taken`},
		"a misspelt field":       {head + "departments:\n  - id: d\n    units: [{id: d-x, serve: [city]}]\n", `unknown field "serve"`},
		"overlapping grids":      {"city: {id: city, name: X, streets: [{id: s, communities: [{id: c, grids: [\n  {id: g1, boundary: " + square(0, 0, 2, 2) + "},\n  {id: g2, boundary: " + square(1, 1, 3, 3) + "}]}]}]}\n", `catalog:3: grid "g2" overlaps grid "g1"`},
		"a missing chain":        {city + "policies: {p: {report_in: 1h, resolve: 2h, chain: none}}\n", `policy "p" names chain "none", which does not exist`},
		"an unknown target":      {city + "chains: {c: [{wait: 1h, target: mayor}]}\npolicies: {p: {report_in: 1h, resolve: 2h, chain: c}}\n", `policy "p": level 1: unknown target "mayor"`},
		"a repeat with no wait":  {city + "chains: {c: [{target: unit-head, repeat: 2}]}\npolicies: {p: {report_in: 1h, resolve: 2h, chain: c}}\n", `level 1: a level that repeats needs a wait`},
		"reminders out of order": {city + "policies: {p: {report_in: 1h, resolve: 2h, remind_at: [80, 50]}}\n", `policy "p": reminders must be shares from 1 to 99 percent in increasing order`},
		"a broken boundary":      {"city: {id: city, name: X, streets: [{id: s, communities: [{id: c, grids: [\n  {id: g1, boundary: {type: Polygon, coordinates: [[[0, 0], [1, 0], [0, 0]]]}}]}]}]}\n", `catalog:2: area g1:`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v; want an error with %s", err, tc.want)
			}
		})
	}
}

func TestTheSampleCityHasThePracticesSizeAndAUnitForEveryPlace(t *testing.T) {
	t.Parallel()
	c, err := Sample()
	if err != nil {
		t.Fatal(err)
	}
	levels := map[string]int{}
	for _, a := range c.Areas() {
		levels[a.Level]++
	}
	if levels[LevelStreet] != 3 || levels[LevelCommunity] != 33 || levels[LevelGrid] != 97 || len(c.Compounds()) != 78 || len(c.Departments()) < 15 {
		t.Errorf("levels %v, %d compounds, %d departments", levels, len(c.Compounds()), len(c.Departments()))
	}
	for _, tc := range []struct{ dept, grid, unit string }{
		{"urban-management", "xinhua-taoyuan-01", "urban-management-xinhua"},
		{"urban-management", "hexi-binjiang-02", "urban-management-hexi"},
		{"street-government", "dongfeng-jinqiao-01", "street-government-dongfeng"},
		{"water", "hexi-binjiang-02", "water"},
	} {
		if u, err := c.UnitFor(tc.dept, tc.grid); err != nil || u.ID != tc.unit {
			t.Errorf("UnitFor(%s, %s) = %v, %v; want %s", tc.dept, tc.grid, u.ID, err, tc.unit)
		}
	}
	for _, a := range c.Areas() {
		if a.Level != LevelGrid {
			continue
		}
		if a.Boundary == nil {
			t.Fatalf("grid %s has no boundary", a.ID)
		}
		centre := a.Boundary.Bound().Center()
		if got, _, err := c.Locate(centre.Lat(), centre.Lon()); err != nil || got != a.ID {
			t.Errorf("the centre of %s lies in %q (%v)", a.ID, got, err)
		}
	}
	_, _, err = c.Locate(22.70, 110.50) // east of the city
	var outside *OutsideError
	if !errors.As(err, &outside) || outside.Nearest == "" || outside.Meters < 1000 {
		t.Errorf("a point outside the city: %v", err)
	}
}

func TestAWorkingTimePolicyCountsByTheCitysCalendar(t *testing.T) {
	t.Parallel()
	c, err := Sample()
	if err != nil {
		t.Fatal(err)
	}
	cx, _ := c.Category("illegal-construction")
	zone, _ := time.LoadLocation("Asia/Shanghai")
	// Raised on the Friday before National Day 2025 at 16:00: one working day of 7.5 hours is the
	// Friday's last 1.5 hours and 6 hours of Sunday 28 September, an adjusted working day
	// (09:00 to 12:00 and 13:30 to 16:30).
	raised := time.Date(2025, 9, 26, 16, 0, 0, 0, zone)
	reportInBy, resolveBy := cx.Normal.Deadlines(c.Calendar(), raised)
	if want := time.Date(2025, 9, 28, 16, 30, 0, 0, zone); !reportInBy.Equal(want) {
		t.Errorf("report in by %s, want %s", reportInBy, want)
	}
	if got := c.Calendar().Between(raised, resolveBy); got != cx.Normal.Resolve {
		t.Errorf("the resolve deadline lies %s of working time after the raise, want %s", got, cx.Normal.Resolve)
	}
	if resolveBy.Before(time.Date(2025, 10, 9, 0, 0, 0, 0, zone)) {
		t.Errorf("resolve by %s: the National Day holiday (1 to 8 October) was counted", resolveBy)
	}
}

func TestACitysOwnCalendarFilesReplaceTheShippedYearAndABrokenOneIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	year, err := os.ReadFile("../workcal/years/2026.yaml")
	if err != nil {
		t.Fatal(err)
	}
	own := strings.Replace(string(year), "  - {from: \"09:00\", to: \"12:00\"}\n  - {from: \"13:30\", to: \"17:30\"}\n",
		"  - {from: \"08:00\", to: \"12:00\"}\n  - {from: \"14:00\", to: \"18:00\"}\n", 1)
	if err := os.MkdirAll(filepath.Join(dir, "calendar"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "calendar", "2026.yaml"), []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	city := func(calendar string) string {
		path := filepath.Join(dir, "city.yaml")
		src := strings.Replace(string(SampleSource()), "  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n  calendar: ["+calendar+"]\n", 1)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	c, err := Load(city("calendar"))
	if err != nil {
		t.Fatal(err)
	}
	zone, _ := time.LoadLocation("Asia/Shanghai")
	monday := time.Date(2026, 12, 7, 8, 0, 0, 0, zone)
	// The city works 08:00 to 12:00 and 14:00 to 18:00: a working day of 7.5 hours from 08:00
	// ends at 17:30 the same day (by the shipped hours it would end on Tuesday at 09:30).
	if got := c.Calendar().Add(monday, 7*time.Hour+30*time.Minute); !got.Equal(time.Date(2026, 12, 7, 17, 30, 0, 0, zone)) {
		t.Errorf("a working day from Monday 08:00 ends at %s, want 17:30 the same day", got.In(zone))
	}
	if _, err := Load(city("nowhere.yaml")); err == nil || !strings.Contains(err.Error(), "working calendar") {
		t.Errorf("a catalog naming a missing calendar file loaded: %v", err)
	}
}

func TestAnAddressNamingACompoundIsPlacedInsideItAndOneNamingNoneOrTwoIsRefused(t *testing.T) {
	c, err := Sample()
	if err != nil {
		t.Fatal(err)
	}
	cp, lat, lon, err := c.PlaceOfAddress("taoyuan garden, building 3, unit 2")
	if err != nil || cp.ID != "taoyuan-garden" || cp.GridID != "xinhua-taoyuan-01" {
		t.Fatalf("the garden's address is placed in %+v, %v", cp, err)
	}
	if lat != 22.7351 || lon != 110.3022 {
		t.Errorf("the garden is placed at %v,%v; want its centre, 22.7351,110.3022, to six decimals", lat, lon)
	}
	if grid, compound, err := c.Locate(lat, lon); err != nil || grid != cp.GridID || compound != cp.ID {
		t.Errorf("the point %v,%v stands for the garden, yet lies in %s, %s (%v)", lat, lon, grid, compound, err)
	}
	for _, address := range []string{"No. 7, Nowhere Lane", "", "between Taoyuan Garden and Hebin Mansion"} {
		if _, _, _, err := c.PlaceOfAddress(address); !errors.Is(err, ErrNoPlace) {
			t.Errorf("%q: %v, want ErrNoPlace", address, err)
		}
	}
}
