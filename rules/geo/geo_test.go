package geo

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/paulmach/orb"
	orbgeo "github.com/paulmach/orb/geo"
)

// Weifang.
const lon0, lat0 = 119.16, 36.70

var pl = NewPlane(lon0, lat0)

// ll returns the orb point of plane position (x, y).
func ll(x, y float64) orb.Point {
	lon, lat := pl.Unproject(XY{x, y})
	return orb.Point{lon, lat}
}

// ring returns the closed orb ring through plane positions xy (x0, y0, x1, y1, ...).
func ring(xy ...float64) orb.Ring {
	var r orb.Ring
	for i := 0; i < len(xy); i += 2 {
		r = append(r, ll(xy[i], xy[i+1]))
	}
	return append(r, r[0])
}

// path returns the orb line through plane positions xy.
func path(xy ...float64) orb.LineString {
	var l orb.LineString
	for i := 0; i < len(xy); i += 2 {
		l = append(l, ll(xy[i], xy[i+1]))
	}
	return l
}

// vincenty returns the WGS-84 geodesic distance in metres (Vincenty's
// inverse formula), the reference for Plane.
func vincenty(lon1, lat1, lon2, lat2 float64) float64 {
	const a, f = wgs84A, wgs84F
	b := a * (1 - f)
	L := (lon2 - lon1) * deg
	sinU1, cosU1 := math.Sincos(math.Atan((1 - f) * math.Tan(lat1*deg)))
	sinU2, cosU2 := math.Sincos(math.Atan((1 - f) * math.Tan(lat2*deg)))
	lambda := L
	var sinSigma, cosSigma, sigma, cos2Alpha, cos2SigmaM float64
	for range 200 {
		sinL, cosL := math.Sincos(lambda)
		sinSigma = math.Hypot(cosU2*sinL, cosU1*sinU2-sinU1*cosU2*cosL)
		if sinSigma == 0 {
			return 0
		}
		cosSigma = sinU1*sinU2 + cosU1*cosU2*cosL
		sigma = math.Atan2(sinSigma, cosSigma)
		sinAlpha := cosU1 * cosU2 * sinL / sinSigma
		cos2Alpha = 1 - sinAlpha*sinAlpha
		cos2SigmaM = 0.0
		if cos2Alpha != 0 {
			cos2SigmaM = cosSigma - 2*sinU1*sinU2/cos2Alpha
		}
		C := f / 16 * cos2Alpha * (4 + f*(4-3*cos2Alpha))
		prev := lambda
		lambda = L + (1-C)*f*sinAlpha*(sigma+C*sinSigma*(cos2SigmaM+C*cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)))
		if math.Abs(lambda-prev) < 1e-13 {
			break
		}
	}
	u2 := cos2Alpha * (a*a - b*b) / (b * b)
	A := 1 + u2/16384*(4096+u2*(-768+u2*(320-175*u2)))
	B := u2 / 1024 * (256 + u2*(-128+u2*(74-47*u2)))
	ds := B * sinSigma * (cos2SigmaM + B/4*(cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)-
		B/6*cos2SigmaM*(-3+4*sinSigma*sinSigma)*(-3+4*cos2SigmaM*cos2SigmaM)))
	return b * A * (sigma - ds)
}

func TestPlaneDegreeOfLatitude(t *testing.T) {
	a, b := pl.Project(lon0, 36.2), pl.Project(lon0, 37.2)
	got := pl.Distance(a, b)
	if rel := math.Abs(got-110950) / 110950; rel > 1e-3 {
		t.Errorf("1° of latitude at 36.7° N = %.1f m, want 110950 m ± 0.1%%", got)
	}
	if want := vincenty(lon0, 36.2, lon0, 37.2); math.Abs(got-want)/want > 1e-4 {
		t.Errorf("1° of latitude = %.1f m, geodesic %.1f m", got, want)
	}
	// A degree of longitude: N cos φ · π/180 = 89.36 km at 36.7° N.
	a, b = pl.Project(lon0-0.5, lat0), pl.Project(lon0+0.5, lat0)
	want := vincenty(lon0-0.5, lat0, lon0+0.5, lat0)
	if got := b.X - a.X; math.Abs(got-89360)/89360 > 1e-4 || math.Abs(got-want)/want > 1e-4 {
		t.Errorf("1° of longitude at 36.7° N = %.1f m, want 89360 m (geodesic %.1f m)", got, want)
	}
}

// TestPlaneDistance compares Plane.Distance with the WGS-84 geodesic for
// points within 50 km of the origin, and the raw plane (hypot of XY) near
// the origin.
func TestPlaneDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	disc := func(c XY, r float64) XY {
		for {
			x, y := (2*rng.Float64()-1)*r, (2*rng.Float64()-1)*r
			if x*x+y*y <= r*r {
				return XY{c.X + x, c.Y + y}
			}
		}
	}
	var worst, worstNear, worstHav float64
	for i := range 5000 {
		a := disc(XY{}, 50e3)
		b := disc(a, 20e3)
		if i%2 == 0 {
			b = disc(a, 3e3)
		}
		if math.Hypot(b.X, b.Y) > 50e3 {
			continue
		}
		alon, alat := pl.Unproject(a)
		blon, blat := pl.Unproject(b)
		want := vincenty(alon, alat, blon, blat)
		if want < 1 {
			continue
		}
		rel := math.Abs(pl.Distance(a, b)-want) / want
		worst = max(worst, rel)
		if math.Hypot(b.X-a.X, b.Y-a.Y) <= 3e3 {
			worstNear = max(worstNear, rel)
		}
		hav := orbgeo.DistanceHaversine(orb.Point{alon, alat}, orb.Point{blon, blat})
		worstHav = max(worstHav, math.Abs(hav-want)/want)
	}
	t.Logf("Plane.Distance vs geodesic, within 50 km: worst %.5f%% (≤ 3 km apart %.5f%%); orb haversine (sphere R=%.0f) worst %.3f%%",
		100*worst, 100*worstNear, orb.EarthRadius, 100*worstHav)
	if worst > 1e-5 || worstNear > 1e-5 {
		t.Errorf("Plane.Distance off the geodesic by up to %.4f%% (≤ 3 km: %.4f%%)", 100*worst, 100*worstNear)
	}
	// orb/geo works on a sphere of the equatorial radius: 0.33 % long
	// north-south at this latitude. Agreement with it is a sanity check.
	if worstHav > 5e-3 {
		t.Errorf("haversine off by %.3f%%", 100*worstHav)
	}

	// The raw plane is within 0.1 % near the origin (here within 5 km).
	for range 2000 {
		a, b := disc(XY{}, 5e3), disc(XY{}, 5e3)
		alon, alat := pl.Unproject(a)
		blon, blat := pl.Unproject(b)
		want := vincenty(alon, alat, blon, blat)
		if got := math.Hypot(b.X-a.X, b.Y-a.Y); want > 1 && math.Abs(got-want)/want > 1e-3 {
			t.Fatalf("raw plane distance %v–%v = %.2f m, geodesic %.2f m", a, b, got, want)
		}
	}
}

func TestPlaneRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		lon, lat := lon0+(2*rng.Float64()-1), lat0+(2*rng.Float64()-1)
		glon, glat := pl.Unproject(pl.Project(lon, lat))
		if math.Abs(glon-lon) > 1e-11 || math.Abs(glat-lat) > 1e-11 {
			t.Fatalf("round trip (%v, %v) → (%v, %v)", lon, lat, glon, glat)
		}
	}
	if q := pl.Project(lon0, lat0); q != (XY{}) {
		t.Errorf("origin projects to %v", q)
	}
	// East and north are positive.
	if q := pl.Project(lon0+0.01, lat0+0.01); !(q.X > 800 && q.Y > 1000) {
		t.Errorf("(+0.01°, +0.01°) projects to %v", q)
	}
}

// brutePIP is planar point-in-polygon in lon/lat, independent of the index:
// union of parts, even-odd over each part's rings, points on an edge in.
func brutePIP(mp orb.MultiPolygon, p orb.Point) bool {
	for _, poly := range mp {
		in := false
		for _, r := range poly {
			for i := range r {
				a, b := r[i], r[(i+1)%len(r)]
				if onSegmentLL(p, a, b) {
					return true
				}
				if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < a[0]+(p[1]-a[1])*(b[0]-a[0])/(b[1]-a[1]) {
					in = !in
				}
			}
		}
		if in {
			return true
		}
	}
	return false
}

// onSegmentLL reports whether p is on ab (in degrees, to 1e-12°).
func onSegmentLL(p, a, b orb.Point) bool {
	dx, dy := b[0]-a[0], b[1]-a[1]
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		t = min(1, max(0, ((p[0]-a[0])*dx+(p[1]-a[1])*dy)/l2))
	}
	return math.Hypot(a[0]+t*dx-p[0], a[1]+t*dy-p[1]) <= 1e-12
}

func TestPolygonsShapes(t *testing.T) {
	square := orb.MultiPolygon{{ring(0, 0, 100, 0, 100, 100, 0, 100)}}
	// L: 200 × 200 less the north-east 100 × 100, drawn clockwise.
	ell := orb.MultiPolygon{{ring(0, 0, 0, 200, 100, 200, 100, 100, 200, 100, 200, 0)}}
	holed := orb.MultiPolygon{{ring(0, 0, 300, 0, 300, 300, 0, 300), ring(100, 100, 200, 100, 200, 200, 100, 200)}}
	multi := orb.MultiPolygon{
		{ring(1000, 0, 1100, 0, 1100, 100, 1000, 100)},
		{ring(1050, 50, 1200, 50, 1200, 150, 1050, 150)}, // overlaps the first
		{ring(2000, 0, 2100, 0, 2050, 80)},
	}
	areas := []orb.MultiPolygon{square, ell, holed, multi, nil, {{ring(0, 0, 1, 1)}}}
	for _, cell := range []float64{0, 7, 50, 100, 1e4} {
		ps := NewPolygons(pl, areas, cell)
		if ps.Len() != len(areas) {
			t.Fatalf("Len = %d", ps.Len())
		}
		for _, tc := range []struct {
			x, y float64
			want []int32
		}{
			{50, 50, []int32{0, 1, 2}},
			{0, 0, []int32{0, 1, 2}},    // shared vertex
			{100, 50, []int32{0, 1, 2}}, // on the square's east edge
			{50, 100, []int32{0, 1, 2}}, // on its north edge
			{100.01, 50, []int32{1, 2}}, // just east of it
			{150, 150, nil},             // the L's notch
			{100, 150, []int32{1, 2}},   // the notch's west edge; the hole's west edge
			{150, 100, []int32{1, 2}},   // the notch's south edge; the hole's south edge
			{150, 99.99, []int32{1, 2}}, // the L, not yet the hole
			{150, 100.01, nil},          // the hole
			{250, 250, []int32{2}},      // the holed square's ring
			{1075, 75, []int32{3}},      // both parts, once
			{1150, 120, []int32{3}},     // second part only
			{1150, 20, nil},             // in the parts' box only
			{2050, 80, []int32{3}},      // apex of the triangle
			{2025, 40, []int32{3}},      // on its slanted west edge
			{2024.99, 40.01, nil},       // off it
			{3000, 3000, nil},           // east of everything
			{-1e6, 5e6, nil},            // far away
			{math.NaN(), 0, nil},        // no point at all
			{math.Inf(1), math.Inf(1), nil},
		} {
			q := pl.Project(ll(tc.x, tc.y)[0], ll(tc.x, tc.y)[1])
			if math.IsNaN(tc.x) || math.IsInf(tc.x, 0) {
				q = XY{tc.x, tc.y}
			}
			got := ps.Containing(q, nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("cell %v: Containing(%v, %v) = %v, want %v", cell, tc.x, tc.y, got, tc.want)
			}
			for id := range int32(len(areas)) {
				if in := ps.Contains(id, q); in != slices.Contains(tc.want, id) {
					t.Errorf("cell %v: Contains(%d, %v, %v) = %v", cell, id, tc.x, tc.y, in)
				}
			}
		}
		// Appends to dst.
		if got := ps.Containing(XY{50, 50}, []int32{7}); !slices.Equal(got, []int32{7, 0, 1, 2}) {
			t.Errorf("Containing appended %v", got)
		}
		// Distances.
		for _, tc := range []struct {
			id   int32
			x, y float64
			want float64
		}{
			{0, 50, 50, 0},
			{0, 130, 50, 30},
			{0, 130, 140, 50},
			{1, 150, 150, 50},
			{2, 150, 150, 50}, // in the hole
			{2, 150, 120, 20},
			{3, 1300, 150, 100},
			{4, 0, 0, math.Inf(1)},
		} {
			got := ps.Distance(tc.id, pl.Project(ll(tc.x, tc.y)[0], ll(tc.x, tc.y)[1]))
			if !(math.Abs(got-tc.want) <= 1e-4*tc.want+1e-6) && got != tc.want {
				t.Errorf("cell %v: Distance(%d, %v, %v) = %v, want %v", cell, tc.id, tc.x, tc.y, got, tc.want)
			}
		}
	}
	// An empty index.
	ps := NewPolygons(pl, nil, 0)
	if ps.Len() != 0 || len(ps.Containing(XY{}, nil)) != 0 {
		t.Error("empty index contains something")
	}
}

// randPoly returns a random polygon in plane coordinates around c: star-
// shaped, possibly holed, or a self-intersecting scribble (even-odd).
func randPoly(rng *rand.Rand, c XY, r float64) orb.Polygon {
	n := 3 + rng.IntN(40)
	star := func(c XY, r0, r1 float64, n int) orb.Ring {
		angles := make([]float64, n)
		for i := range angles {
			angles[i] = rng.Float64() * 2 * math.Pi
		}
		slices.Sort(angles)
		var ring orb.Ring
		for _, a := range angles {
			rr := r0 + rng.Float64()*(r1-r0)
			ring = append(ring, ll(c.X+rr*math.Cos(a), c.Y+rr*math.Sin(a)))
		}
		return append(ring, ring[0])
	}
	switch rng.IntN(5) {
	case 0: // scribble
		var ring orb.Ring
		for range n {
			ring = append(ring, ll(c.X+(2*rng.Float64()-1)*r, c.Y+(2*rng.Float64()-1)*r))
		}
		return orb.Polygon{append(ring, ring[0])}
	case 1: // holed star
		return orb.Polygon{star(c, 0.4*r, r, n), star(c, 0.1*r, 0.35*r, 3+rng.IntN(10))}
	case 2: // axis-aligned rectangle on round coordinates
		x0, y0 := math.Round(c.X/10)*10, math.Round(c.Y/10)*10
		w, h := 10*float64(1+rng.IntN(int(r/5)+1)), 10*float64(1+rng.IntN(int(r/5)+1))
		return orb.Polygon{ring(x0, y0, x0+w, y0, x0+w, y0+h, x0, y0+h)}
	default:
		return orb.Polygon{star(c, 0.2*r, r, n)}
	}
}

func randArea(rng *rand.Rand, span, r float64) orb.MultiPolygon {
	c := XY{(2*rng.Float64() - 1) * span, (2*rng.Float64() - 1) * span}
	mp := orb.MultiPolygon{randPoly(rng, c, r*(0.2+rng.Float64()))}
	for rng.IntN(3) == 0 {
		d := XY{c.X + (2*rng.Float64()-1)*r, c.Y + (2*rng.Float64()-1)*r}
		mp = append(mp, randPoly(rng, d, r*(0.2+rng.Float64())))
	}
	return mp
}

// TestPolygonsRandom compares Containing and Distance with brute force over
// random polygons and points, on and off the edges, for several cell sizes.
func TestPolygonsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 12 {
		span, r := 2000.0, 50+rng.Float64()*800
		areas := make([]orb.MultiPolygon, 1+rng.IntN(60))
		for i := range areas {
			areas[i] = randArea(rng, span, r)
		}
		cell := []float64{0, 9, 40, 150, 1000, 5000}[round%6]
		ps := NewPolygons(pl, areas, cell)

		check := func(p orb.Point, mustIn int32) {
			t.Helper()
			q := pl.Project(p[0], p[1])
			var want []int32
			for id, mp := range areas {
				if brutePIP(mp, p) {
					want = append(want, int32(id))
				}
			}
			got := ps.Containing(q, make([]int32, 0, 8))
			if !slices.Equal(got, want) {
				t.Fatalf("round %d cell %v: Containing(%v) = %v, brute force %v", round, cell, q, got, want)
			}
			if mustIn >= 0 && !slices.Contains(got, mustIn) {
				t.Fatalf("round %d: point %v on an edge of %d not inside", round, q, mustIn)
			}
			for range 3 {
				id := int32(rng.IntN(len(areas)))
				if len(want) > 0 && rng.IntN(2) == 0 {
					id = want[rng.IntN(len(want))]
				}
				d := ps.Distance(id, q)
				if in := slices.Contains(want, id); in != (d == 0) {
					t.Fatalf("round %d: Distance(%d, %v) = %v, inside %v", round, id, q, d, in)
				}
				if d > 0 {
					if bd := bruteRingDist(areas[id], q); math.Abs(d-bd) > 1e-9*(1+bd) {
						t.Fatalf("round %d: Distance(%d, %v) = %v, brute force %v", round, id, q, d, bd)
					}
				}
			}
		}
		for range 3000 {
			check(ll((2*rng.Float64()-1)*(span+2*r), (2*rng.Float64()-1)*(span+2*r)), -1)
		}
		// Vertices, points along edges (in lon/lat, so exactly on them),
		// and points a centimetre either side.
		for id, mp := range areas {
			for _, poly := range mp {
				for _, rg := range poly {
					for i := range len(rg) - 1 {
						a, b := rg[i], rg[i+1]
						check(a, int32(id))
						f := rng.Float64()
						check(orb.Point{a[0] + f*(b[0]-a[0]), a[1] + f*(b[1]-a[1])}, int32(id))
						check(orb.Point{(a[0] + b[0]) / 2, (a[1] + b[1]) / 2}, int32(id))
						pa, pb := pl.Project(a[0], a[1]), pl.Project(b[0], b[1])
						if l := math.Hypot(pb.X-pa.X, pb.Y-pa.Y); l > 0 {
							nx, ny := -(pb.Y-pa.Y)/l*0.01, (pb.X-pa.X)/l*0.01
							m := XY{pa.X + f*(pb.X-pa.X), pa.Y + f*(pb.Y-pa.Y)}
							check(ll(m.X+nx, m.Y+ny), -1)
							check(ll(m.X-nx, m.Y-ny), -1)
						}
					}
				}
			}
		}
		// Points whose segment to their cell's reference point passes
		// (nearly) through a vertex: the degenerate case of the crossing
		// count.
		for c := range ps.nx * ps.ny {
			for _, e := range ps.ents[ps.off[c]:ps.off[c+1]] {
				if e.full {
					continue
				}
				for _, s := range ps.edges[e.e0:e.e1] {
					for _, f := range []float64{0.3, 0.5, 1.5, 2} {
						q := XY{e.ref.X + f*(s.a.X-e.ref.X), e.ref.Y + f*(s.a.Y-e.ref.Y)}
						if cq, ok := ps.cell(q); ok && cq == c {
							lon, lat := pl.Unproject(q)
							check(orb.Point{lon, lat}, -1)
						}
					}
				}
			}
		}
	}
}

// bruteRingDist is the distance from q to the edges of mp, by brute force.
func bruteRingDist(mp orb.MultiPolygon, q XY) float64 {
	sx, sy := pl.metric(q.Y)
	best := math.Inf(1)
	for _, poly := range mp {
		for _, r := range poly {
			for i := range r {
				a, b := r[i], r[(i+1)%len(r)]
				best = min(best, bruteSegDist(q, pl.Project(a[0], a[1]), pl.Project(b[0], b[1]), sx, sy))
			}
		}
	}
	return best
}

// bruteSegDist is the scaled distance from q to ab, computed differently
// from segDist2: endpoint when the foot falls outside, else the height.
func bruteSegDist(q, a, b XY, sx, sy float64) float64 {
	ax, ay := (q.X-a.X)*sx, (q.Y-a.Y)*sy
	bx, by := (q.X-b.X)*sx, (q.Y-b.Y)*sy
	dx, dy := (b.X-a.X)*sx, (b.Y-a.Y)*sy
	switch {
	case ax*dx+ay*dy <= 0:
		return math.Hypot(ax, ay)
	case bx*dx+by*dy >= 0:
		return math.Hypot(bx, by)
	default:
		return math.Abs(dx*ay-dy*ax) / math.Hypot(dx, dy)
	}
}

func TestLinesShapes(t *testing.T) {
	paths := []orb.LineString{
		path(0, 0, 4000, 0), // 0: two vertices
		path(0, 0, 0, 0, 100, 0, 100, 0, 100, 0, 100, 100, 100, 100), // 1: repeats
		path(500, 500),                 // 2: a point
		path(500, 500, 500, 500),       // 3: a point, twice
		nil,                            // 4: empty
		path(-20000, -50, 20000, 50),   // 5: 40 km, one segment
		path(-3000, -3000, 3000, 3000), // 6: 8.5 km, diagonal
	}
	for _, cell := range []float64{0, 3, 50, 1000} {
		ls := NewLines(pl, paths, cell)
		if ls.Len() != len(paths) {
			t.Fatalf("Len = %d", ls.Len())
		}
		for _, tc := range []struct {
			id   int32
			x, y float64
			want float64
		}{
			{0, 2000, 30, 30},
			{0, 2000, -30, 30},
			{0, -30, 40, 50},
			{0, 4003, 4, 5},
			{0, 1234, 0, 0},
			{1, 50, 10, 10},
			{1, 150, 50, 50},
			{1, 100, 130, 30},
			{2, 530, 540, 50},
			{3, 500, 500, 0},
			{5, 1000, 52.5, 50 / math.Sqrt(1+1.0/400/400)},
			{5, -14000, -35, 0},
			{5, 20100, 50, 100},
			{6, 1000, 0, 1000 / math.Sqrt2},
			{6, -2000, -2000, 0},
			{4, 0, 0, math.Inf(1)},
		} {
			q := pl.Project(ll(tc.x, tc.y)[0], ll(tc.x, tc.y)[1])
			d := ls.Distance(tc.id, q)
			// Within 0.01 %: the plane's scale is corrected, slightly, off the origin.
			if !(math.Abs(d-tc.want) <= 1e-4*tc.want+1e-6) && d != tc.want {
				t.Errorf("cell %v: Distance(%d, %v, %v) = %v, want %v", cell, tc.id, tc.x, tc.y, d, tc.want)
			}
			for _, r := range []float64{0, 15, 50, 1000, d, math.Nextafter(d, 0), math.Inf(1)} {
				got, ok := ls.Within(tc.id, q, r)
				if ok != (d <= r && !math.IsInf(d, 1)) || ok && got != d || !ok && !(got > r || math.IsInf(got, 1)) {
					t.Errorf("cell %v: Within(%d, %v, %v, r=%v) = %v, %v; distance %v", cell, tc.id, tc.x, tc.y, r, got, ok, d)
				}
			}
		}
		if _, ok := ls.Within(0, XY{math.NaN(), 0}, 50); ok {
			t.Error("Within(NaN) = ok")
		}
		if _, ok := ls.Within(0, XY{2000, 30}, math.NaN()); ok {
			t.Error("Within(r=NaN) = ok")
		}
		for _, q := range []XY{{math.NaN(), 0}, {0, math.NaN()}, {math.Inf(1), 0}} {
			if d := ls.Distance(0, q); !math.IsNaN(d) {
				t.Errorf("Distance(%v) = %v, want NaN", q, d)
			}
		}
	}
	if ls := NewLines(pl, nil, 0); ls.Len() != 0 {
		t.Error("empty index has lines")
	}
}

// TestLinesRandom compares Within and Distance with brute force over random
// lines (random walks with repeats, zig-zags, long segments) and points near
// and far, for several cell sizes.
func TestLinesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for round := range 10 {
		paths := make([]orb.LineString, 1+rng.IntN(40))
		proj := make([][]XY, len(paths))
		for i := range paths {
			p := XY{(2*rng.Float64() - 1) * 5000, (2*rng.Float64() - 1) * 5000}
			n := 2 + rng.IntN(200)
			if rng.IntN(5) == 0 {
				n = 2
			}
			step := []float64{5, 50, 300, 3000}[rng.IntN(4)]
			for range n {
				paths[i] = append(paths[i], ll(p.X, p.Y))
				if rng.IntN(8) != 0 { // else a repeated vertex
					p.X += (2*rng.Float64() - 1) * step
					p.Y += (2*rng.Float64() - 1) * step
				}
			}
			for _, v := range paths[i] {
				proj[i] = append(proj[i], pl.Project(v[0], v[1]))
			}
		}
		cell := []float64{0, 4, 30, 500, 8000}[round%5]
		ls := NewLines(pl, paths, cell)
		for range 4000 {
			id := int32(rng.IntN(len(paths)))
			var q XY
			if rng.IntN(2) == 0 { // near the line
				v := proj[id][rng.IntN(len(proj[id]))]
				d := rng.ExpFloat64() * []float64{3, 30, 300}[rng.IntN(3)]
				a := rng.Float64() * 2 * math.Pi
				q = XY{v.X + d*math.Cos(a), v.Y + d*math.Sin(a)}
			} else {
				q = XY{(2*rng.Float64() - 1) * 12000, (2*rng.Float64() - 1) * 12000}
			}
			sx, sy := pl.metric(q.Y)
			want := math.Inf(1)
			for i := range len(proj[id]) - 1 {
				want = min(want, bruteSegDist(q, proj[id][i], proj[id][i+1], sx, sy))
			}
			d := ls.Distance(id, q)
			if math.Abs(d-want) > 1e-9*(1+want) {
				t.Fatalf("round %d cell %v: Distance(%d, %v) = %v, brute force %v", round, cell, id, q, d, want)
			}
			for _, r := range []float64{want, d, math.Nextafter(d, 0), math.Nextafter(d, math.Inf(1)),
				15, 50, 1000, rng.Float64() * 2 * want, rng.ExpFloat64() * 100} {
				got, ok := ls.Within(id, q, r)
				if ok != (d <= r) || ok && got != d || !ok && !(got > r) {
					t.Fatalf("round %d cell %v: Within(%d, %v, %v) = %v, %v; distance %v", round, cell, id, q, r, got, ok, d)
				}
			}
		}
	}
}

// TestLinesMetres checks Lines' distances against the WGS-84 geodesic
// anywhere within 50 km of the origin: the error grows as tan(lat)·d/R.
func TestLinesMetres(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	pts := make([]orb.LineString, 500)
	for i := range pts {
		a := rng.Float64() * 2 * math.Pi
		r := 50e3 * math.Sqrt(rng.Float64())
		pts[i] = path(r*math.Cos(a), r*math.Sin(a)) // a point
	}
	ls := NewLines(pl, pts, 0)
	worst := 0.0
	for id, p := range pts {
		for _, d := range []float64{15, 50, 300, 1000, 3000} {
			a := rng.Float64() * 2 * math.Pi
			c := pl.Project(p[0][0], p[0][1])
			q := XY{c.X + d*math.Cos(a), c.Y + d*math.Sin(a)}
			lon, lat := pl.Unproject(q)
			want := vincenty(lon, lat, p[0][0], p[0][1])
			got := ls.Distance(int32(id), q)
			rel := math.Abs(got-want) / want
			worst = max(worst, rel/(want/1000))
			if rel > 4e-5*want/1000+1e-7 {
				t.Fatalf("point %d at %.0f m: Distance %.4f m, geodesic %.4f m", id, d, got, want)
			}
		}
	}
	t.Logf("Lines.Distance vs geodesic within 50 km: worst %.4f%% per km", 100*worst)
}

func TestNoAllocs(t *testing.T) {
	ps := NewPolygons(pl, []orb.MultiPolygon{{{ring(0, 0, 100, 0, 100, 100, 0, 100)}}, {{ring(50, 50, 300, 0, 100, 300)}}}, 0)
	ls := NewLines(pl, []orb.LineString{path(0, 0, 100, 0, 100, 100, 0, 100, 0, 0, 100, 100)}, 0)
	dst := make([]int32, 0, 4)
	q := XY{60, 55}
	for name, f := range map[string]func(){
		"Containing":        func() { dst = ps.Containing(q, dst[:0]) },
		"Polygons.Distance": func() { _ = ps.Distance(1, XY{-50, 50}) },
		"Within":            func() { _, _ = ls.Within(0, q, 50) },
		"Within far":        func() { _, _ = ls.Within(0, XY{3000, 3000}, 1000) },
		"Lines.Distance":    func() { _ = ls.Distance(0, XY{3000, 3000}) },
		"Project":           func() { q = pl.Project(lon0, lat0); q = XY{60, 55} },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
	if len(dst) != 2 {
		t.Errorf("Containing = %v", dst)
	}
}

// TestConcurrentQueries runs queries from many goroutines against one
// index (for the race detector) and checks they agree.
func TestConcurrentQueries(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	areas := make([]orb.MultiPolygon, 50)
	for i := range areas {
		areas[i] = randArea(rng, 2000, 300)
	}
	paths := make([]orb.LineString, 20)
	for i := range paths {
		paths[i] = path(rng.Float64()*4000-2000, rng.Float64()*4000-2000, rng.Float64()*4000-2000, rng.Float64()*4000-2000, rng.Float64()*4000-2000, rng.Float64()*4000-2000)
	}
	ps, ls := NewPolygons(pl, areas, 0), NewLines(pl, paths, 0)
	qs := make([]XY, 500)
	for i := range qs {
		qs[i] = XY{rng.Float64()*5000 - 2500, rng.Float64()*5000 - 2500}
	}
	answer := func(q XY) (int, float64) {
		return len(ps.Containing(q, nil)), ls.Distance(int32(int(q.X+1e4)%len(paths)), q)
	}
	want := make([][2]float64, len(qs))
	for i, q := range qs {
		n, d := answer(q)
		want[i] = [2]float64{float64(n), d}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i, q := range qs {
				if n, d := answer(q); float64(n) != want[i][0] || d != want[i][1] {
					t.Errorf("concurrent answer for %v differs", q)
				}
			}
		})
	}
	wg.Wait()
}
