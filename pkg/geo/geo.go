// Package geo is the plane geometry of a city's area boundaries: it checks the polygons a
// catalog declares, finds which area holds a reported position and how far a position lies
// from an area. Coordinates are WGS-84 longitude and latitude in degrees, in GeoJSON order
// ([lng, lat]), treated as a plane: at the scale of one city the curvature of the earth moves
// a boundary by less than the accuracy of a phone's position, and a plane keeps edges straight
// lines, as the GIS tools that draw the boundaries also take them to be.
//
// orb (github.com/paulmach/orb) does ring containment, bounds and segment distance; this
// package adds what orb lacks: validation of input polygons, whether two polygons overlap or
// one lies within another, and an index that looks a position up among many areas.
package geo

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// ErrInvalidPolygon is wrapped by every error NewPolygon returns, so that a caller loading a
// catalog can tell bad geometry from a file it could not read.
var ErrInvalidPolygon = errors.New("invalid polygon")

// NewPolygon builds a polygon from GeoJSON Polygon coordinates: rings of [lng, lat] positions,
// the first ring the outer boundary and the rest holes. It refuses a polygon whose rings have
// fewer than 4 positions or are not closed (first position equal to the last), a position that
// is not a number or lies outside longitude [-180, 180] or latitude [-90, 90], a ring that
// encloses no area, a ring that crosses or touches itself, and a hole that is not within the
// outer ring: any of these would make Contains and Overlap answer nonsense later, where the
// cause is much harder to see than at load time. Either orientation of a ring is accepted, as
// RFC 7946 asks of parsers. The check of a ring against itself takes time quadratic in its
// positions, which is nothing for the few hundred of a city boundary.
func NewPolygon(rings [][][2]float64) (orb.Polygon, error) {
	if len(rings) == 0 {
		return nil, fmt.Errorf("%w: it has no rings; the first ring is the outer boundary", ErrInvalidPolygon)
	}
	p := make(orb.Polygon, len(rings))
	for i, positions := range rings {
		r, err := newRing(positions)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %v", ErrInvalidPolygon, ringName(i), err)
		}
		p[i] = r
	}
	for i := 1; i < len(p); i++ {
		if !Within(orb.Polygon{p[i]}, orb.Polygon{p[0]}) {
			return nil, fmt.Errorf("%w: %s is not within the outer ring", ErrInvalidPolygon, ringName(i))
		}
	}
	return p, nil
}

// ringName names ring i for an error message.
func ringName(i int) string {
	if i == 0 {
		return "the outer ring"
	}
	return fmt.Sprintf("hole %d (ring %d)", i, i)
}

// newRing checks one ring's positions and copies them into an orb.Ring.
func newRing(positions [][2]float64) (orb.Ring, error) {
	if n := len(positions); n < 4 {
		return nil, fmt.Errorf("has %d positions; a ring needs at least 4, the last repeating the first", n)
	}
	r := make(orb.Ring, len(positions))
	for j, pos := range positions {
		lng, lat := pos[0], pos[1]
		switch {
		case math.IsNaN(lng) || math.IsNaN(lat) || math.IsInf(lng, 0) || math.IsInf(lat, 0):
			return nil, fmt.Errorf("position %d %v is not a finite number", j, pos)
		case lng < -180 || lng > 180:
			return nil, fmt.Errorf("position %d: longitude %v is outside [-180, 180]", j, lng)
		case lat < -90 || lat > 90:
			return nil, fmt.Errorf("position %d: latitude %v is outside [-90, 90]", j, lat)
		}
		r[j] = orb.Point(pos)
	}
	if first, last := r[0], r[len(r)-1]; first != last {
		return nil, fmt.Errorf("is not closed: it starts at %v and ends at %v", first, last)
	}
	if err := checkSimple(r); err != nil {
		return nil, err
	}
	return r, nil
}

// Contains reports whether pt lies in p, holes excluded. A point on the outer ring counts as
// in, and a point on a hole's ring as out (it belongs to whatever fills the hole), so that the
// closed areas of a tiling cover every point. A point on the edge two adjacent areas share is
// therefore in both; Index.Locate settles which one it is reported in by taking the first in the
// index's order. "On" is as far as floating point can tell: for an edge that is neither
// vertical nor horizontal, a point computed to lie on it may come out just inside or just
// outside, but the edge's test is the same computation in both polygons that share it, so the
// point still comes out in one of them.
func Contains(p orb.Polygon, pt orb.Point) bool {
	if len(p) == 0 || len(p[0]) == 0 {
		return false
	}
	return planar.PolygonContains(p, pt)
}

// DistanceMeters returns 0 when pt lies in p (as Contains decides), and otherwise the distance
// in metres from pt to the nearest edge of p, a hole's edges included. The distance is measured
// in a local equirectangular projection centred on pt (longitude scaled by the cosine of pt's
// latitude), which is within a fraction of a percent of the great-circle distance over the few
// kilometres of a city, and much cheaper. It does not handle areas that straddle the
// antimeridian. An empty polygon is infinitely far away.
func DistanceMeters(p orb.Polygon, pt orb.Point) float64 {
	if Contains(p, pt) {
		return 0
	}
	return math.Sqrt(newLocal(pt).toBoundary2(p))
}

// metresPerDegree is the length of one degree of latitude, and of longitude at the equator, on
// the sphere orb measures distances on.
const metresPerDegree = orb.EarthRadius * math.Pi / 180

// local is an equirectangular projection centred on one point, in metres.
type local struct {
	origin orb.Point
	kx, ky float64 // metres per degree of longitude and of latitude at the origin
}

func newLocal(origin orb.Point) local {
	return local{
		origin: origin,
		kx:     metresPerDegree * math.Cos(origin[1]*math.Pi/180),
		ky:     metresPerDegree,
	}
}

// project returns q's position in metres east and north of the origin.
func (l local) project(q orb.Point) orb.Point {
	return orb.Point{(q[0] - l.origin[0]) * l.kx, (q[1] - l.origin[1]) * l.ky}
}

// toBoundary2 returns the square of the distance in metres from the origin to the nearest edge
// of p; squares spare Index.Nearest a square root per area it compares.
func (l local) toBoundary2(p orb.Polygon) float64 {
	best := math.Inf(1)
	for _, r := range p {
		for i := 0; i+1 < len(r); i++ {
			d := planar.DistanceFromSegmentSquared(l.project(r[i]), l.project(r[i+1]), orb.Point{})
			if d < best {
				best = d
			}
		}
	}
	return best
}

// toBound2 returns the square of the distance in metres from the origin to b, 0 when the origin
// is in b. No edge inside b can be nearer, which makes it the bound Index.Nearest prunes with.
func (l local) toBound2(b orb.Bound) float64 {
	dx := gap(l.origin[0], b.Min[0], b.Max[0]) * l.kx
	dy := gap(l.origin[1], b.Min[1], b.Max[1]) * l.ky
	return dx*dx + dy*dy
}

// gap returns how far v lies outside [lo, hi], 0 inside.
func gap(v, lo, hi float64) float64 {
	switch {
	case v < lo:
		return lo - v
	case v > hi:
		return v - hi
	}
	return 0
}

// InteriorPoint returns a point that lies in p (as Contains decides): its centroid when that lies
// in it, as it does for any convex area; otherwise, for a U- or L-shaped area whose centroid falls
// outside, the middle of the widest stretch of p along the parallel through the centroid. It
// stands for an area as a whole, where a place is known by name alone. An empty polygon has none.
func InteriorPoint(p orb.Polygon) (orb.Point, bool) {
	if !usable(p) {
		return orb.Point{}, false
	}
	c, _ := planar.CentroidArea(p)
	if Contains(p, c) {
		return c, true
	}
	// Where every ring crosses the parallel; between the first and second crossing, the third and
	// fourth and so on, the parallel runs inside p.
	var xs []float64
	for _, r := range p {
		for i := 1; i < len(r); i++ {
			a, b := r[i-1], r[i]
			if (a[1] <= c[1]) != (b[1] <= c[1]) {
				xs = append(xs, a[0]+(c[1]-a[1])*(b[0]-a[0])/(b[1]-a[1]))
			}
		}
	}
	slices.Sort(xs)
	best, widest := orb.Point{}, -1.0
	for i := 0; i+1 < len(xs); i += 2 {
		if w := xs[i+1] - xs[i]; w > widest {
			best, widest = orb.Point{(xs[i] + xs[i+1]) / 2, c[1]}, w
		}
	}
	return best, widest > 0 && Contains(p, best)
}
