package scenario

import (
	"math"

	"github.com/paulmach/orb"
)

// plane is a local equirectangular projection in metres east (X) and north
// (Y) of an origin, on orb's sphere. Over a city (~20 km) its distances
// agree with great-circle ones to well under 0.1 %.
type plane struct {
	lon0, lat0 float64
	kx, ky     float64 // metres per degree of longitude and of latitude
}

func newPlane(lon0, lat0 float64) plane {
	ky := orb.EarthRadius * math.Pi / 180
	return plane{lon0: lon0, lat0: lat0, kx: ky * math.Cos(lat0*math.Pi/180), ky: ky}
}

// xy is a point on the plane, metres.
type xy struct{ X, Y float64 }

func (p plane) project(pt orb.Point) xy { return xy{(pt[0] - p.lon0) * p.kx, (pt[1] - p.lat0) * p.ky} }

func (p plane) point(q xy) orb.Point { return orb.Point{p.lon0 + q.X/p.kx, p.lat0 + q.Y/p.ky} }

func (a xy) add(b xy) xy              { return xy{a.X + b.X, a.Y + b.Y} }
func (a xy) sub(b xy) xy              { return xy{a.X - b.X, a.Y - b.Y} }
func (a xy) scale(f float64) xy       { return xy{a.X * f, a.Y * f} }
func (a xy) dot(b xy) float64         { return a.X*b.X + a.Y*b.Y }
func dist(a, b xy) float64            { return math.Hypot(b.X-a.X, b.Y-a.Y) }
func lerp(a, b xy, f float64) xy      { return a.add(b.sub(a).scale(f)) }
func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// segDist is the distance from p to the segment ab.
func segDist(p, a, b xy) float64 {
	ab := b.sub(a)
	f := 0.0
	if l := ab.dot(ab); l > 0 {
		f = clamp(p.sub(a).dot(ab)/l, 0, 1)
	}
	return dist(p, lerp(a, b, f))
}

// polyline is a projected LineString.
type polyline []xy

// distance is the distance from p to the polyline.
func (l polyline) distance(p xy) float64 {
	best := math.Inf(1)
	for k := 1; k < len(l); k++ {
		best = math.Min(best, segDist(p, l[k-1], l[k]))
	}
	if len(l) == 1 {
		best = dist(p, l[0])
	}
	return best
}

// area is a projected MultiPolygon with a bounding box for quick rejects.
type area struct {
	polys    [][][]xy // polygon → ring (outer first) → closed ring
	min, max xy
}

func newArea(pl plane, mp orb.MultiPolygon) area {
	a := area{min: xy{math.Inf(1), math.Inf(1)}, max: xy{math.Inf(-1), math.Inf(-1)}}
	for _, poly := range mp {
		var rings [][]xy
		for _, r := range poly {
			ring := make([]xy, len(r))
			for i, pt := range r {
				q := pl.project(pt)
				ring[i] = q
				a.min = xy{math.Min(a.min.X, q.X), math.Min(a.min.Y, q.Y)}
				a.max = xy{math.Max(a.max.X, q.X), math.Max(a.max.Y, q.Y)}
			}
			rings = append(rings, ring)
		}
		a.polys = append(a.polys, rings)
	}
	return a
}

// signed returns the distance from p to the area's boundary, positive
// inside and negative outside. Points farther than far outside the
// bounding box return a negative value no closer than -far.
func (a area) signed(p xy, far float64) float64 {
	if p.X < a.min.X-far || p.X > a.max.X+far || p.Y < a.min.Y-far || p.Y > a.max.Y+far {
		return -far - 1
	}
	inside := false
	best := math.Inf(1)
	for _, poly := range a.polys {
		in := false
		for ri, r := range poly {
			if ringContains(r, p) {
				if ri == 0 {
					in = true
				} else {
					in = false // in a hole
				}
			}
			for k := 1; k < len(r); k++ {
				best = math.Min(best, segDist(p, r[k-1], r[k]))
			}
		}
		inside = inside || in
	}
	if inside {
		return best
	}
	return -best
}

// ringContains is the even-odd test.
func ringContains(r []xy, p xy) bool {
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		a, b := r[i], r[j]
		if (a.Y > p.Y) != (b.Y > p.Y) && p.X < (b.X-a.X)*(p.Y-a.Y)/(b.Y-a.Y)+a.X {
			in = !in
		}
	}
	return in
}
