package catalog

import (
	"testing"
	"time"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
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
	if cx.Normal.Resolve != 15*24*time.Hour {
		t.Errorf("complex resolve = %v, want 15 days", cx.Normal.Resolve)
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

func TestABrokenCatalogIsRefusedWithTheReason(t *testing.T) {
	_, err := Parse([]byte(`
city: {id: city, name: X, streets: [{id: s, communities: [{id: s, grids: [g]}]}]}
categories: [{id: k, normal: missing}]
`))
	if err == nil {
		t.Fatal("want an error for a duplicate area and a missing policy")
	}
}
