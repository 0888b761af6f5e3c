package geo

import (
	"fmt"
	"math"
	"slices"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// onEdge is how far, in degrees, a position may lie from an edge and still count as on it:
// about a tenth of a millimetre. Boundaries drawn in a GIS tool share their edges' vertices, but
// a vertex of one area that lies on the middle of another's slanted edge (a T-junction) is
// only on it up to rounding; without a tolerance such neighbours would be taken to overlap by
// a sliver a billionth of a degree wide.
const onEdge = 1e-9

// Overlap reports whether the interiors of a and b intersect: their edges cross, a part of one's
// boundary lies strictly inside the other, or they cover the same area (identical polygons,
// whose boundaries coincide). Polygons that only share an edge or a corner do not overlap, so
// the grids of a tiling overlap none of their neighbours, and a polygon filling another's hole
// does not overlap it.
//
// Each edge of one polygon is cut wherever the other's boundary meets it, so that every piece
// lies wholly inside, outside or along the other's boundary, and the middle of each piece is
// tested. When no piece of either boundary lies strictly inside the other, the interiors are
// either the same or disjoint, and the side of a shared piece on which each interior lies tells
// which.
func Overlap(a, b orb.Polygon) bool {
	if !usable(a) || !usable(b) || !a.Bound().Intersects(b.Bound()) {
		return false
	}
	shared, same := false, false
	overlapsFrom := func(x, y orb.Polygon) bool {
		found := false
		for ri, r := range x {
			eachPiece(r, y, func(pc piece) bool {
				switch pc.where {
				case inside:
					found = true
				case on:
					if !shared {
						shared, same = sameSide(x, ri, pc, y)
					}
				}
				return !found
			})
			if found {
				return true
			}
		}
		return false
	}
	if overlapsFrom(a, b) || overlapsFrom(b, a) {
		return true
	}
	return shared && same
}

// Within reports whether inner lies wholly in outer, boundaries allowed to touch: every vertex of
// inner is inside or on outer, no edge of inner crosses out of outer (each edge, cut where
// outer's boundary meets it, has every piece inside or on outer, and along a shared piece both
// interiors lie on the same side), and no hole of outer reaches into inner. A polygon is within
// itself, and a grid whose edges run along its community's boundary is within the community.
func Within(inner, outer orb.Polygon) bool {
	if !usable(inner) || !usable(outer) {
		return false
	}
	ob := outer.Bound().Pad(onEdge)
	if ib := inner.Bound(); !ob.Contains(ib.Min) || !ob.Contains(ib.Max) {
		return false
	}
	for _, v := range inner[0] {
		if w, _, _ := classify(v, outer); w == outside {
			return false
		}
	}
	ok := true
	for ri, r := range inner {
		eachPiece(r, outer, func(pc piece) bool {
			switch pc.where {
			case outside:
				ok = false
			case on:
				if parallel, same := sameSide(inner, ri, pc, outer); parallel && !same {
					ok = false
				}
			}
			return ok
		})
		if !ok {
			return false
		}
	}
	for _, hole := range outer[1:] {
		eachPiece(hole, inner, func(pc piece) bool {
			ok = pc.where != inside
			return ok
		})
		if !ok {
			return false
		}
	}
	return true
}

// usable reports whether p has an outer ring with an edge to test; Overlap and Within take
// polygons that did not come through NewPolygon and must not index into an empty one.
func usable(p orb.Polygon) bool { return len(p) > 0 && len(p[0]) >= 2 }

// place is where a position lies relative to a polygon.
type place int

const (
	outside place = iota
	on
	inside
)

// piece is part of an edge of one polygon that the other polygon's boundary does not meet except
// at its ends, so that its middle stands for all of it.
type piece struct {
	mid        orb.Point
	dir        orb.Point // the direction of the edge the piece was cut from
	where      place     // of mid relative to the other polygon
	ring, edge int       // the other polygon's ring and edge that mid lies on, when where is on
}

// minPiece is the shortest piece eachPiece reports, in degrees: cuts closer together than this
// are one cut, so that the middle of every piece lies well clear of the cuts.
const minPiece = 4 * onEdge

// eachPiece cuts every edge of r where the boundary of p meets it (an edge of p crossing it, or
// a vertex of p lying on it) and calls fn with each piece, stopping when fn returns false.
func eachPiece(r orb.Ring, p orb.Polygon, fn func(piece) bool) {
	var cuts []float64
	for i := 0; i+1 < len(r); i++ {
		s, e := r[i], r[i+1]
		d := orb.Point{e[0] - s[0], e[1] - s[1]}
		length := math.Hypot(d[0], d[1])
		if length == 0 {
			continue
		}
		cuts = append(cuts[:0], 0)
		for _, pr := range p {
			for j := 0; j+1 < len(pr); j++ {
				cuts = appendCuts(cuts, s, e, d, pr[j], pr[j+1])
			}
		}
		slices.Sort(cuts)
		kept := cuts[:1] // 0, the start; sorted first as no cut is below it
		for _, t := range cuts[1:] {
			if (t-kept[len(kept)-1])*length >= minPiece && (1-t)*length >= minPiece {
				kept = append(kept, t)
			}
		}
		kept = append(kept, 1)
		for k := 0; k+1 < len(kept); k++ {
			t := (kept[k] + kept[k+1]) / 2
			mid := orb.Point{s[0] + d[0]*t, s[1] + d[1]*t}
			w, ring, edge := classify(mid, p)
			if !fn(piece{mid: mid, dir: d, where: w, ring: ring, edge: edge}) {
				return
			}
		}
	}
}

// appendCuts adds to cuts the positions along the edge s→e (d = e - s, as fractions of its
// length) where the segment u–v meets the edge strictly between its ends.
func appendCuts(cuts []float64, s, e, d, u, v orb.Point) []float64 {
	ou, ov := orient(s, e, u), orient(s, e, v)
	along := func(q orb.Point) float64 {
		return ((q[0]-s[0])*d[0] + (q[1]-s[1])*d[1]) / (d[0]*d[0] + d[1]*d[1])
	}
	if ou == 0 {
		if t := along(u); t > 0 && t < 1 {
			cuts = append(cuts, t)
		}
	}
	if ov == 0 {
		if t := along(v); t > 0 && t < 1 {
			cuts = append(cuts, t)
		}
	}
	if ou*ov < 0 && orient(u, v, s)*orient(u, v, e) < 0 {
		w := orb.Point{v[0] - u[0], v[1] - u[1]}
		if t := cross(orb.Point{u[0] - s[0], u[1] - s[1]}, w) / cross(d, w); t > 0 && t < 1 {
			cuts = append(cuts, t)
		}
	}
	return cuts
}

// classify says where pt lies relative to p, and when it is on p's boundary, on which ring and
// edge.
func classify(pt orb.Point, p orb.Polygon) (where place, ring, edge int) {
	for ri, r := range p {
		for i := 0; i+1 < len(r); i++ {
			if planar.DistanceFromSegmentSquared(r[i], r[i+1], pt) <= onEdge*onEdge {
				return on, ri, i
			}
		}
	}
	if planar.PolygonContains(p, pt) {
		return inside, 0, 0
	}
	return outside, 0, 0
}

// sameSide reports, for a piece of ring ri of x that lies along an edge of y, whether the piece
// runs parallel to that edge (a piece that only passes the edge's end within the tolerance does
// not) and, if it does, whether the interiors of x and y lie on the same side of it.
func sameSide(x orb.Polygon, ri int, pc piece, y orb.Polygon) (parallel, same bool) {
	yr := y[pc.ring]
	dy := orb.Point{yr[pc.edge+1][0] - yr[pc.edge][0], yr[pc.edge+1][1] - yr[pc.edge][1]}
	if math.Abs(cross(pc.dir, dy)) > 1e-9*math.Hypot(pc.dir[0], pc.dir[1])*math.Hypot(dy[0], dy[1]) {
		return false, false
	}
	leftX, leftY := interiorLeft(x, ri), interiorLeft(y, pc.ring)
	if pc.dir[0]*dy[0]+pc.dir[1]*dy[1] < 0 {
		leftY = !leftY
	}
	return true, leftX == leftY
}

// interiorLeft reports whether p's interior lies to the left of ring ri as it runs: the left of
// a counter-clockwise outer ring, the right of a counter-clockwise hole.
func interiorLeft(p orb.Polygon, ri int) bool {
	return (p[ri].Orientation() == orb.CCW) == (ri == 0)
}

// cross is the z component of the cross product of a and b.
func cross(a, b orb.Point) float64 { return a[0]*b[1] - a[1]*b[0] }

// orient says on which side of the line through s and e the position q lies: 1 left, -1 right,
// 0 on it (within onEdge).
func orient(s, e, q orb.Point) int {
	d := orb.Point{e[0] - s[0], e[1] - s[1]}
	c := cross(d, orb.Point{q[0] - s[0], q[1] - s[1]})
	switch {
	case math.Abs(c) <= onEdge*math.Hypot(d[0], d[1]):
		return 0
	case c > 0:
		return 1
	default:
		return -1
	}
}

// segmentsMeet reports whether the closed segments s–e and u–v have a point in common (within
// onEdge).
func segmentsMeet(s, e, u, v orb.Point) bool {
	if orient(s, e, u)*orient(s, e, v) < 0 && orient(u, v, s)*orient(u, v, e) < 0 {
		return true
	}
	const tol2 = onEdge * onEdge
	return planar.DistanceFromSegmentSquared(s, e, u) <= tol2 ||
		planar.DistanceFromSegmentSquared(s, e, v) <= tol2 ||
		planar.DistanceFromSegmentSquared(u, v, s) <= tol2 ||
		planar.DistanceFromSegmentSquared(u, v, e) <= tol2
}

// spansAPlane reports whether some position of r lies off the line through its first two
// distinct positions.
func spansAPlane(r orb.Ring) bool {
	for _, q := range r[min(2, len(r)):] {
		if orient(r[0], r[1], q) != 0 {
			return true
		}
	}
	return false
}

// checkSimple refuses a closed ring that encloses no area or whose edges cross or touch other
// than where consecutive edges join. Repeated consecutive positions are allowed and skipped.
func checkSimple(r orb.Ring) error {
	pts := make(orb.Ring, 0, len(r))
	for _, q := range r {
		if len(pts) == 0 || pts[len(pts)-1] != q {
			pts = append(pts, q)
		}
	}
	if !spansAPlane(pts) {
		return fmt.Errorf("encloses no area: it needs 3 positions not on one line")
	}
	n := len(pts) - 1 // edges; edge i runs from pts[i] to pts[i+1]
	for i := range n {
		// Consecutive edges share a position; they cross only by doubling back along each other.
		a, v, c := pts[i], pts[i+1], pts[(i+2)%n]
		if orient(a, v, c) == 0 && (v[0]-a[0])*(c[0]-v[0])+(v[1]-a[1])*(c[1]-v[1]) < 0 {
			return fmt.Errorf("crosses itself: it turns back on itself at %v", v)
		}
	}
	for i := range n {
		for j := i + 2; j < n; j++ {
			if i == 0 && j == n-1 {
				continue // the last edge joins the first
			}
			if segmentsMeet(pts[i], pts[i+1], pts[j], pts[j+1]) {
				return fmt.Errorf("crosses itself: the edge %v–%v meets the edge %v–%v",
					pts[i], pts[i+1], pts[j], pts[j+1])
			}
		}
	}
	if pts.Orientation() == 0 {
		return fmt.Errorf("encloses no area")
	}
	return nil
}
