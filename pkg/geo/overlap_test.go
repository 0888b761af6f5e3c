package geo_test

import (
	"math"
	"testing"

	"github.com/paulmach/orb"

	"github.com/whistle-dispatch/whistle/pkg/geo"
)

func TestOverlap(t *testing.T) {
	t.Parallel()
	unit := poly(rect(0, 0, 1, 1))
	withHole := poly(rect(0, 0, 4, 4), reversed(rect(1, 1, 2, 2)))
	tests := []struct {
		name string
		a, b orb.Polygon
		want bool
	}{
		{"identical squares overlap", unit, poly(rect(0, 0, 1, 1)), true},
		{"a square overlaps the same square run the other way", unit, poly(reversed(rect(0, 0, 1, 1))), true},
		{"a square strictly inside another overlaps it", poly(rect(0, 0, 3, 3)), poly(rect(1, 1, 2, 2)), true},
		{"a square inside another and sharing two of its edges overlaps it", poly(rect(0, 0, 2, 2)), unit, true},
		{"a triangle with its corners on a square's corners overlaps it", poly(rect(0, 0, 2, 2)),
			poly([][2]float64{{0, 0}, {2, 0}, {2, 2}, {0, 0}}), true},
		{"squares whose edges cross overlap", unit, poly(rect(0.5, 0.5, 1.5, 1.5)), true},
		{"two bars crossing like a plus sign overlap", poly(rect(0, 1, 3, 2)), poly(rect(1, 0, 2, 3)), true},
		{"strips that share part of two edges overlap", poly(rect(0, 0, 2, 1)), poly(rect(1, 0, 3, 1)), true},
		{"squares that share an edge do not overlap", unit, poly(rect(1, 0, 2, 1)), false},
		{"squares that share part of an edge do not overlap", unit, poly(rect(1, 0.5, 2, 3)), false},
		{"squares that share a corner do not overlap", unit, poly(rect(1, 1, 2, 2)), false},
		{"squares apart do not overlap", unit, poly(rect(3, 3, 4, 4)), false},
		{"squares apart whose bounds overlap do not overlap",
			poly([][2]float64{{0, 0}, {2, 0}, {0, 2}, {0, 0}}), poly([][2]float64{{2, 2}, {1.5, 2}, {2, 1.5}, {2, 2}}), false},
		{"triangles that halve a square along its diagonal do not overlap",
			poly([][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 0}}), poly([][2]float64{{0, 0}, {1, 1}, {0, 1}, {0, 0}}), false},
		{"a square whose corner touches the middle of a slanted edge does not overlap it",
			poly([][2]float64{{0, 0}, {3, 0}, {0, 3}, {0, 0}}), poly([][2]float64{{1.5, 1.5}, {2.5, 1.5}, {2.5, 2.5}, {1.5, 2.5}, {1.5, 1.5}}), false},
		{"grids meeting at a T-junction do not overlap", poly(rect(0, 0, 2, 1)), poly(rect(0, 1, 1, 2)), false},
		{"a square that fills a hole does not overlap the polygon around it", withHole, poly(rect(1, 1, 2, 2)), false},
		{"a square inside a hole and clear of its edges does not overlap", withHole, poly(rect(1.2, 1.2, 1.8, 1.8)), false},
		{"a square reaching out of a hole overlaps", withHole, poly(rect(1.5, 1.5, 2.5, 2.5)), true},
		{"a square covering a hole overlaps", withHole, poly(rect(0.5, 0.5, 2.5, 2.5)), true},
		{"an empty polygon overlaps nothing", nil, unit, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := geo.Overlap(tt.a, tt.b); got != tt.want {
				t.Errorf("Overlap(a, b) = %v, want %v", got, tt.want)
			}
			if got := geo.Overlap(tt.b, tt.a); got != tt.want {
				t.Errorf("Overlap(b, a) = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWithin(t *testing.T) {
	t.Parallel()
	community := poly(rect(0, 0, 3, 1))
	withHole := poly(rect(0, 0, 4, 4), reversed(rect(1, 1, 2, 2)))
	notched := poly([][2]float64{{0, 0}, {3, 0}, {3, 3}, {2, 3}, {2, 1}, {1, 1}, {1, 3}, {0, 3}, {0, 0}})
	tests := []struct {
		name         string
		inner, outer orb.Polygon
		want         bool
	}{
		{"a polygon is within itself", community, community, true},
		{"a small square strictly inside is within", poly(rect(1.2, 0.2, 1.8, 0.8)), community, true},
		{"a grid strip sharing three edges with its community is within it", poly(rect(0, 0, 1, 1)), community, true},
		{"a grid strip in the middle of its community is within it", poly(rect(1, 0, 2, 1)), community, true},
		{"a square crossing out of the community is not within", poly(rect(2.5, 0.5, 3.5, 0.8)), community, false},
		{"a neighbour sharing an edge is not within", poly(rect(3, 0, 4, 1)), community, false},
		{"a larger polygon is not within a smaller one", community, poly(rect(0, 0, 1, 1)), false},
		{"a square around a hole is not within the polygon with the hole", poly(rect(0.5, 0.5, 2.5, 2.5)), withHole, false},
		{"a square filling a hole is not within the polygon with the hole", poly(rect(1, 1, 2, 2)), withHole, false},
		{"a square beside a hole is within the polygon with the hole", poly(rect(2, 2, 3, 3)), withHole, true},
		{"a bar with its corners in both arms of a U but bridging the notch is not within it",
			poly(rect(0.5, 2, 2.5, 2.5)), notched, false},
		{"a bar with its corners on both arms of a U and its edge across the notch is not within it",
			poly(rect(0, 2, 3, 2.5)), notched, false},
		{"a bar along the base of a U is within it", poly(rect(0, 0, 3, 1)), notched, true},
		{"an empty polygon is not within anything", nil, community, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := geo.Within(tt.inner, tt.outer); got != tt.want {
				t.Fatalf("Within = %v, want %v", got, tt.want)
			}
		})
	}
}

// latticeRects returns every rectangle with corners on a 4×4 lattice of points 0.01° apart,
// which among them share edges, corners, parts of edges, or nest in every way rectangles can.
func latticeRects() [][4]int {
	var rs [][4]int // west, south, east, north, in lattice steps
	for w := range 4 {
		for e := w + 1; e < 4; e++ {
			for s := range 4 {
				for n := s + 1; n < 4; n++ {
					rs = append(rs, [4]int{w, s, e, n})
				}
			}
		}
	}
	return rs
}

// latticePolygon places a lattice rectangle in the sample city, its lattice turned by angle
// radians, so that with an angle its edges are slanted and a corner of one rectangle lies on the
// middle of another's edge only up to rounding.
func latticePolygon(r [4]int, angle float64) orb.Polygon {
	sin, cos := math.Sincos(angle)
	at := func(i, j int) [2]float64 {
		x, y := 0.01*float64(i), 0.01*float64(j)
		return [2]float64{110.30 + x*cos - y*sin, 22.66 + x*sin + y*cos}
	}
	return poly([][2]float64{at(r[0], r[1]), at(r[2], r[1]), at(r[2], r[3]), at(r[0], r[3]), at(r[0], r[1])})
}

func TestOverlapAndWithinAgreeWithIntervalsForEveryPairOfLatticeRectanglesStraightOrTurned(t *testing.T) {
	t.Parallel()
	rs := latticeRects()
	for _, angle := range []float64{0, math.Pi / 6, 1} {
		for _, a := range rs {
			for _, b := range rs {
				overlap := min(a[2], b[2]) > max(a[0], b[0]) && min(a[3], b[3]) > max(a[1], b[1])
				within := a[0] >= b[0] && a[1] >= b[1] && a[2] <= b[2] && a[3] <= b[3]
				pa, pb := latticePolygon(a, angle), latticePolygon(b, angle)
				if got := geo.Overlap(pa, pb); got != overlap {
					t.Errorf("turned %.2f rad: Overlap(%v, %v) = %v, want %v", angle, a, b, got, overlap)
				}
				if got := geo.Within(pa, pb); got != within {
					t.Errorf("turned %.2f rad: Within(%v, %v) = %v, want %v", angle, a, b, got, within)
				}
			}
		}
	}
}
