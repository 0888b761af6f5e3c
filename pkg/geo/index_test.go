package geo_test

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/paulmach/orb"

	"github.com/whistle-dispatch/whistle/pkg/geo"
)

// tiling returns rows×cols adjacent squares of side 0.01° from (110.30, 22.66) to the north-east,
// named r<row>c<col>, row by row.
func tiling(rows, cols int) []geo.Area {
	var areas []geo.Area
	for r := range rows {
		for c := range cols {
			// Whole hundredths divided once, so that neighbours share exactly the same
			// edge and 110.31 here is 110.31 in the tests.
			lng := func(c int) float64 { return float64(11030+c) / 100 }
			lat := func(r int) float64 { return float64(2266+r) / 100 }
			areas = append(areas, geo.Area{
				ID:       fmt.Sprintf("r%dc%d", r, c),
				Boundary: poly(rect(lng(c), lat(r), lng(c+1), lat(r+1))),
			})
		}
	}
	return areas
}

func TestIndexLocate(t *testing.T) {
	t.Parallel()
	x := geo.NewIndex(tiling(2, 2)) // r0c0 r0c1 r1c0 r1c1
	tests := []struct {
		name   string
		pt     orb.Point
		wantID string
	}{
		{"a point inside a square is found in it", orb.Point{110.305, 22.665}, "r0c0"},
		{"a point in the last square is found in it", orb.Point{110.315, 22.675}, "r1c1"},
		{"a point on the edge between two squares is found in the first of them", orb.Point{110.31, 22.665}, "r0c0"},
		{"a point on the corner four squares share is found in the first", orb.Point{110.31, 22.67}, "r0c0"},
		{"a point on the outer edge of the tiling is found in its square", orb.Point{110.32, 22.675}, "r1c1"},
		{"a point outside every square is not found", orb.Point{110.33, 22.665}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, ok := x.Locate(tt.pt)
			if id != tt.wantID || ok != (tt.wantID != "") {
				t.Fatalf("Locate(%v) = %q, %v; want %q", tt.pt, id, ok, tt.wantID)
			}
		})
	}
}

func TestIndexLocateOnASharedEdgeFollowsTheIndexOrder(t *testing.T) {
	t.Parallel()
	areas := tiling(1, 2)
	edge := orb.Point{110.31, 22.665}
	if id, _ := geo.NewIndex(areas).Locate(edge); id != "r0c0" {
		t.Fatalf("in order r0c0, r0c1: found in %q", id)
	}
	if id, _ := geo.NewIndex([]geo.Area{areas[1], areas[0]}).Locate(edge); id != "r0c1" {
		t.Fatalf("in order r0c1, r0c0: found in %q", id)
	}
}

func TestIndexLocateFindsEveryPointOfATilingInTheFirstAreaThatContainsIt(t *testing.T) {
	t.Parallel()
	areas := tiling(4, 5)
	x := geo.NewIndex(areas)
	// A lattice four times finer than the squares, so that it hits edges, corners and insides.
	for i := 0; i <= 20; i++ {
		for j := 0; j <= 16; j++ {
			pt := orb.Point{110.30 + 0.0025*float64(i), 22.66 + 0.0025*float64(j)}
			want := ""
			for _, a := range areas {
				if geo.Contains(a.Boundary, pt) {
					want = a.ID
					break
				}
			}
			if want == "" {
				t.Fatalf("%v, within the tiling, is in no square", pt)
			}
			if got, ok := x.Locate(pt); !ok || got != want {
				t.Fatalf("Locate(%v) = %q, %v; want %q", pt, got, ok, want)
			}
		}
	}
}

func TestIndexKeepsItsOwnCopyOfTheBoundaries(t *testing.T) {
	t.Parallel()
	areas := tiling(1, 1)
	x := geo.NewIndex(areas)
	areas[0].Boundary[0][2] = orb.Point{200, 200}
	if _, ok := x.Locate(orb.Point{110.305, 22.665}); !ok {
		t.Fatal("changing the caller's boundary changed the index")
	}
}

func TestIndexNearest(t *testing.T) {
	t.Parallel()
	x := geo.NewIndex(tiling(3, 3))
	east := orb.Point{110.335, 22.675}
	tests := []struct {
		name       string
		pt         orb.Point
		wantID     string
		wantMeters float64
	}{
		{"a point inside a square is 0 m from it", orb.Point{110.305, 22.665}, "r0c0", 0},
		{"a point on an edge is 0 m from the first square that has it", orb.Point{110.31, 22.665}, "r0c0", 0},
		{"a point east of the tiling is nearest the square beside it", east, "r1c2",
			geo.DistanceMeters(poly(rect(110.32, 22.67, 110.33, 22.68)), east)},
		{"a point level with a shared corner is nearest the first square at that corner",
			orb.Point{110.34, 22.68}, "r1c2", geo.DistanceMeters(poly(rect(110.32, 22.67, 110.33, 22.68)), orb.Point{110.34, 22.68})},
		{"a point south-west of the tiling is nearest the corner square", orb.Point{110.29, 22.65}, "r0c0",
			geo.DistanceMeters(poly(rect(110.30, 22.66, 110.31, 22.67)), orb.Point{110.29, 22.65})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, m := x.Nearest(tt.pt)
			if id != tt.wantID || m != tt.wantMeters {
				t.Fatalf("Nearest(%v) = %q, %.3f m; want %q, %.3f m", tt.pt, id, m, tt.wantID, tt.wantMeters)
			}
		})
	}
	if m := tests[2].wantMeters; m < 500 || m > 600 {
		t.Fatalf("0.005° of longitude at 22.7°N measured %.1f m, want about 513 m", m)
	}
}

func TestNearestInAnEmptyIndexIsNothingAtAnInfiniteDistance(t *testing.T) {
	t.Parallel()
	id, m := geo.NewIndex(nil).Nearest(orb.Point{110.3, 22.7})
	if id != "" || !math.IsInf(m, 1) {
		t.Fatalf("Nearest = %q, %v; want \"\", +Inf", id, m)
	}
}

func TestIndexAnswersManyReadersAtOnce(t *testing.T) {
	t.Parallel()
	areas := tiling(10, 10)
	x := geo.NewIndex(areas)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				a := areas[(g*31+i)%len(areas)]
				c := a.Boundary.Bound().Center()
				if id, ok := x.Locate(c); !ok || id != a.ID {
					errs <- fmt.Errorf("Locate(%v) = %q, %v; want %q", c, id, ok, a.ID)
					return
				}
				if id, m := x.Nearest(c); id != a.ID || m != 0 {
					errs <- fmt.Errorf("Nearest(%v) = %q, %v; want %q, 0", c, id, m, a.ID)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// benchPoints returns positions spread over the 10×10 tiling (and, with outside, around it),
// chosen on a fixed lattice so that every run measures the same work.
func benchPoints(outside bool) []orb.Point {
	var pts []orb.Point
	for i := range 37 {
		for j := range 41 {
			u, v := float64(i)/36, float64(j)/40
			if outside {
				// A ring of positions up to 0.05° beyond the tiling's edges.
				u, v = u*2-0.5, v*2-0.5
				if u >= 0 && u <= 1 && v >= 0 && v <= 1 {
					continue
				}
			}
			pts = append(pts, orb.Point{110.30 + 0.1*u, 22.66 + 0.1*v})
		}
	}
	return pts
}

// BenchmarkLocate looks positions up among 100 grids, about as many as the sample city has.
func BenchmarkLocate(b *testing.B) {
	x := geo.NewIndex(tiling(10, 10))
	pts := benchPoints(false)
	for i := 0; b.Loop(); i++ {
		if _, ok := x.Locate(pts[i%len(pts)]); !ok {
			b.Fatal("a point inside the tiling was not found")
		}
	}
}

// BenchmarkNearest measures positions outside all of 100 grids, where Nearest has edges to
// measure; inside, it costs what Locate does.
func BenchmarkNearest(b *testing.B) {
	x := geo.NewIndex(tiling(10, 10))
	pts := benchPoints(true)
	for i := 0; b.Loop(); i++ {
		if id, _ := x.Nearest(pts[i%len(pts)]); id == "" {
			b.Fatal("no nearest area")
		}
	}
}

func TestIndexLocateFindsEveryPointOnTheSlantedSharedEdgesOfATurnedTiling(t *testing.T) {
	t.Parallel()
	// 3×3 squares turned by 30°, so that no edge is level: a point computed to lie on a shared
	// edge is on it only up to rounding, and must still be found in one of the two squares. (On
	// the tiling's outer edge it may as well come out just outside, as Contains says.)
	var areas []geo.Area
	edges := map[[2]orb.Point]bool{}
	for i := range 3 {
		for j := range 3 {
			p := latticePolygon([4]int{i, j, i + 1, j + 1}, math.Pi/6)
			areas = append(areas, geo.Area{ID: fmt.Sprintf("%d,%d", i, j), Boundary: p})
			for e := range 4 {
				edges[[2]orb.Point{p[0][e], p[0][e+1]}] = true
			}
		}
	}
	x := geo.NewIndex(areas)
	tested := 0
	for _, a := range areas {
		r := a.Boundary[0]
		for e := range 4 {
			if !edges[[2]orb.Point{r[e+1], r[e]}] {
				continue // no neighbour runs along this edge the other way
			}
			for k := 1; k < 10; k++ {
				f := float64(k) / 10
				pt := orb.Point{r[e][0] + (r[e+1][0]-r[e][0])*f, r[e][1] + (r[e+1][1]-r[e][1])*f}
				if _, ok := x.Locate(pt); !ok {
					t.Errorf("%v, on an edge of %s, is in no area", pt, a.ID)
				}
				tested++
			}
		}
	}
	if tested != 2*12*9 { // 12 shared edges, each seen from both sides
		t.Fatalf("tested %d points, want %d", tested, 2*12*9)
	}
}
