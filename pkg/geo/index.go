package geo

import (
	"math"

	"github.com/paulmach/orb"
)

// Area is one named boundary to look positions up in, such as a grid of the city.
type Area struct {
	ID       string
	Boundary orb.Polygon
}

// Index finds the area that holds a position, or the nearest one when none does. It is
// immutable once built, so any number of goroutines may call its methods at once without a lock.
//
// It scans the areas' bounding boxes in order rather than keeping a tree: a city has some
// hundreds of grids, a scan of a hundred boxes takes a fraction of a microsecond, and the order
// of the scan is what decides between areas that share an edge.
type Index struct {
	ids    []string
	bounds []orb.Bound
	polys  []orb.Polygon
}

// NewIndex builds an index of areas, in the order given; that order decides which area a
// position on the edge between two of them is reported in. The index keeps its own copy of the
// boundaries, so the caller may change its slices afterwards without racing the index's readers.
// An area without an outer ring is kept but never found.
func NewIndex(areas []Area) *Index {
	x := &Index{
		ids:    make([]string, len(areas)),
		bounds: make([]orb.Bound, len(areas)),
		polys:  make([]orb.Polygon, len(areas)),
	}
	for i, a := range areas {
		x.ids[i] = a.ID
		x.polys[i] = a.Boundary.Clone()
		// An empty bound (Min above Max) that no position passes.
		x.bounds[i] = orb.Bound{Min: orb.Point{1, 1}, Max: orb.Point{-1, -1}}
		if usable(a.Boundary) {
			x.bounds[i] = a.Boundary.Bound()
		}
	}
	return x
}

// Locate returns the id of the first area, in the index's order, that contains pt (see
// Contains): a position on an edge two areas share is reported in exactly one of them, the
// same one every time. It reports false when no area holds pt.
func (x *Index) Locate(pt orb.Point) (id string, ok bool) {
	if i := x.locate(pt); i >= 0 {
		return x.ids[i], true
	}
	return "", false
}

// locate returns the position in the index of the first area that contains pt, or -1.
func (x *Index) locate(pt orb.Point) int {
	for i := range x.bounds {
		b := &x.bounds[i]
		if pt[0] < b.Min[0] || pt[0] > b.Max[0] || pt[1] < b.Min[1] || pt[1] > b.Max[1] {
			continue
		}
		if Contains(x.polys[i], pt) {
			return i
		}
	}
	return -1
}

// Nearest returns the area nearest to pt and its distance in metres (see DistanceMeters): the
// area Locate reports, at 0, when one holds pt, otherwise the area with the nearest edge, the
// first in order among equally near ones. An empty index returns "" at an infinite distance.
//
// It measures first the area whose bounding box is nearest, which in a tiling is nearly always
// the answer, and then skips unmeasured every area whose box lies farther than that.
func (x *Index) Nearest(pt orb.Point) (id string, meters float64) {
	l := newLocal(pt)
	guess, guessBox := -1, math.Inf(1)
	for i := range x.bounds {
		d := l.toBound2(x.bounds[i])
		if d == 0 && Contains(x.polys[i], pt) {
			return x.ids[i], 0 // the first area that holds pt, as Locate finds it
		}
		if d < guessBox && usable(x.polys[i]) {
			guess, guessBox = i, d
		}
	}
	if guess < 0 {
		return "", math.Inf(1)
	}
	best, bestAt := l.toBoundary2(x.polys[guess]), guess
	for i := range x.bounds {
		if i == guess || !usable(x.polys[i]) || l.toBound2(x.bounds[i]) > best {
			continue
		}
		if d := l.toBoundary2(x.polys[i]); d < best || d == best && i < bestAt {
			best, bestAt = d, i
		}
	}
	return x.ids[bestAt], math.Sqrt(best)
}
