package geo_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	orbgeo "github.com/paulmach/orb/geo"

	"github.com/whistle-dispatch/whistle/pkg/geo"
)

// rect returns the rectangle between two corners as a closed counter-clockwise ring.
func rect(minLng, minLat, maxLng, maxLat float64) [][2]float64 {
	return [][2]float64{{minLng, minLat}, {maxLng, minLat}, {maxLng, maxLat}, {minLng, maxLat}, {minLng, minLat}}
}

// poly builds a polygon from rings without checking them, for tests of the other functions.
func poly(rings ...[][2]float64) orb.Polygon {
	p := make(orb.Polygon, len(rings))
	for i, r := range rings {
		for _, q := range r {
			p[i] = append(p[i], orb.Point(q))
		}
	}
	return p
}

// reversed returns the ring run the other way round.
func reversed(r [][2]float64) [][2]float64 {
	out := make([][2]float64, len(r))
	for i, q := range r {
		out[len(r)-1-i] = q
	}
	return out
}

func TestNewPolygonAcceptsValidBoundaries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rings [][][2]float64
	}{
		{"a counter-clockwise square is accepted", [][][2]float64{rect(110.30, 22.66, 110.31, 22.67)}},
		{"a clockwise square is accepted too", [][][2]float64{reversed(rect(110.30, 22.66, 110.31, 22.67))}},
		{"a square with a hole is accepted", [][][2]float64{
			rect(110.30, 22.66, 110.34, 22.70), reversed(rect(110.31, 22.67, 110.32, 22.68)),
		}},
		{"a hole touching the outer ring from inside is accepted", [][][2]float64{
			rect(110.30, 22.66, 110.34, 22.70), rect(110.30, 22.67, 110.32, 22.68),
		}},
		{"a concave L-shape is accepted", [][][2]float64{{
			{0, 0}, {2, 0}, {2, 1}, {1, 1}, {1, 2}, {0, 2}, {0, 0},
		}}},
		{"a repeated position is skipped, not taken for a crossing", [][][2]float64{{
			{0, 0}, {1, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0},
		}}},
		{"a boundary at the edges of the map is accepted", [][][2]float64{rect(-180, -90, 180, 90)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := geo.NewPolygon(tt.rings)
			if err != nil {
				t.Fatalf("NewPolygon: %v", err)
			}
			if len(p) != len(tt.rings) {
				t.Fatalf("got %d rings, want %d", len(p), len(tt.rings))
			}
			for i, r := range tt.rings {
				for j, q := range r {
					if p[i][j] != orb.Point(q) {
						t.Fatalf("ring %d position %d = %v, want %v", i, j, p[i][j], q)
					}
				}
			}
		})
	}
}

func TestNewPolygonRefusesInvalidBoundariesWithAReason(t *testing.T) {
	t.Parallel()
	square := rect(110.30, 22.66, 110.31, 22.67)
	tests := []struct {
		name  string
		rings [][][2]float64
		says  string
	}{
		{"a polygon without rings is refused", nil, "no rings"},
		{"a ring of 3 positions is refused", [][][2]float64{{{0, 0}, {1, 0}, {0, 0}}}, "has 3 positions"},
		{"a ring that is not closed is refused", [][][2]float64{{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}, "not closed"},
		{"a longitude beyond 180 is refused", [][][2]float64{rect(179, 0, 181, 1)}, "longitude 181"},
		{"a latitude below -90 is refused", [][][2]float64{rect(0, -91, 1, 0)}, "latitude -91"},
		{"a longitude that is not a number is refused", [][][2]float64{{
			{0, 0}, {math.NaN(), 0}, {1, 1}, {0, 0},
		}}, "not a finite number"},
		{"an infinite latitude is refused", [][][2]float64{{
			{0, 0}, {1, math.Inf(1)}, {1, 1}, {0, 0},
		}}, "not a finite number"},
		{"an outer ring shaped like a bow tie is refused", [][][2]float64{{
			{0, 0}, {1, 1}, {1, 0}, {0, 1}, {0, 0},
		}}, "the outer ring crosses itself"},
		{"an outer ring that touches itself at a vertex is refused", [][][2]float64{{
			{0, 0}, {2, 0}, {1, 1}, {2, 2}, {0, 2}, {1, 1}, {0, 0},
		}}, "the outer ring crosses itself"},
		{"an outer ring with a spike that turns back is refused", [][][2]float64{{
			{0, 0}, {2, 0}, {3, 0}, {2, 0}, {2, 1}, {0, 1}, {0, 0},
		}}, "turns back"},
		{"an outer ring with all positions on one line is refused", [][][2]float64{{
			{0, 0}, {1, 0}, {2, 0}, {0, 0},
		}}, "encloses no area"},
		{"a hole that crosses itself is refused", [][][2]float64{
			rect(0, 0, 4, 4), {{1, 1}, {2, 2}, {2, 1}, {1, 2}, {1, 1}},
		}, "hole 1 (ring 1) crosses itself"},
		{"a hole outside the outer ring is refused", [][][2]float64{
			square, rect(110.32, 22.66, 110.33, 22.67),
		}, "hole 1 (ring 1) is not within the outer ring"},
		{"a hole sticking out of the outer ring is refused", [][][2]float64{
			rect(0, 0, 2, 2), rect(1, 1, 3, 1.5),
		}, "not within the outer ring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := geo.NewPolygon(tt.rings)
			if err == nil {
				t.Fatal("NewPolygon accepted it")
			}
			if !errors.Is(err, geo.ErrInvalidPolygon) {
				t.Errorf("error %q does not wrap ErrInvalidPolygon", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

func TestContains(t *testing.T) {
	t.Parallel()
	withHole := poly(rect(0, 0, 4, 4), reversed(rect(1, 1, 2, 2)))
	tests := []struct {
		name string
		pt   orb.Point
		want bool
	}{
		{"a point inside is contained", orb.Point{3, 3}, true},
		{"a point outside is not contained", orb.Point{5, 1}, false},
		{"a point in the hole is not contained", orb.Point{1.5, 1.5}, false},
		{"a point on the outer ring's edge is contained", orb.Point{4, 2}, true},
		{"a point on the outer ring's corner is contained", orb.Point{0, 0}, true},
		{"a point on the hole's edge is not contained", orb.Point{1.5, 1}, false},
		{"a point on the hole's corner is not contained", orb.Point{2, 2}, false},
		{"a point level with an edge but beyond it is not contained", orb.Point{4.5, 4}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := geo.Contains(withHole, tt.pt); got != tt.want {
				t.Fatalf("Contains(%v) = %v, want %v", tt.pt, got, tt.want)
			}
		})
	}
}

func TestContainsOnAnEmptyPolygonIsFalse(t *testing.T) {
	t.Parallel()
	if geo.Contains(nil, orb.Point{0, 0}) || geo.Contains(orb.Polygon{{}}, orb.Point{0, 0}) {
		t.Fatal("an empty polygon contains a point")
	}
}

func TestDistanceMeters(t *testing.T) {
	t.Parallel()
	// A square of about 1 km at the sample city's latitude, with a hole in its middle.
	withHole := poly(rect(110.30, 22.70, 110.31, 22.71), reversed(rect(110.304, 22.704, 110.306, 22.706)))
	tests := []struct {
		name string
		pt   orb.Point
		// want is the great-circle distance to the nearest point of the boundary, or 0.
		nearest *orb.Point
	}{
		{"a point inside is 0 m away", orb.Point{110.302, 22.702}, nil},
		{"a point on the edge is 0 m away", orb.Point{110.31, 22.705}, nil},
		{"a point north of the square is measured to the top edge", orb.Point{110.305, 22.711}, &orb.Point{110.305, 22.71}},
		{"a point east of the square is measured to the right edge", orb.Point{110.312, 22.705}, &orb.Point{110.31, 22.705}},
		{"a point off a corner is measured to the corner", orb.Point{110.311, 22.6995}, &orb.Point{110.31, 22.70}},
		{"a point in the hole is measured to the hole's edge", orb.Point{110.3052, 22.7049}, &orb.Point{110.306, 22.7049}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := geo.DistanceMeters(withHole, tt.pt)
			if tt.nearest == nil {
				if got != 0 {
					t.Fatalf("DistanceMeters = %v, want 0", got)
				}
				return
			}
			want := orbgeo.DistanceHaversine(tt.pt, *tt.nearest)
			if math.Abs(got-want) > 0.005*want {
				t.Fatalf("DistanceMeters = %.2f m, want %.2f m within 0.5%%", got, want)
			}
		})
	}
}

func TestDistanceMetersToAnEmptyPolygonIsInfinite(t *testing.T) {
	t.Parallel()
	if d := geo.DistanceMeters(nil, orb.Point{0, 0}); !math.IsInf(d, 1) {
		t.Fatalf("DistanceMeters = %v, want +Inf", d)
	}
}

func TestAnInteriorPointLiesInTheAreaEvenWhenItsCentroidDoesNot(t *testing.T) {
	// A U open to the north: its centroid falls in the gap between the arms.
	u := poly([][2]float64{{0, 0}, {3, 0}, {3, 3}, {2, 3}, {2, 1}, {1, 1}, {1, 3}, {0, 3}, {0, 0}})
	for name, p := range map[string]orb.Polygon{
		"a rectangle":                        poly(rect(110.30, 22.73, 110.31, 22.74)),
		"a U":                                u,
		"a square with a hole at its centre": poly(rect(0, 0, 4, 4), rect(1, 1, 3, 3)),
	} {
		pt, ok := geo.InteriorPoint(p)
		if !ok || !geo.Contains(p, pt) {
			t.Errorf("%s: interior point %v (%t) does not lie in it", name, pt, ok)
		}
	}
	if pt, ok := geo.InteriorPoint(poly(rect(110.30, 22.73, 110.31, 22.74))); !ok || math.Abs(pt[0]-110.305) > 1e-9 || math.Abs(pt[1]-22.735) > 1e-9 {
		t.Errorf("a rectangle's interior point is %v, want its centre", pt)
	}
	if _, ok := geo.InteriorPoint(orb.Polygon{}); ok {
		t.Error("an empty polygon has an interior point")
	}
}
