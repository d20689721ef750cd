package geo

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/paulmach/orb"
)

// The benchmark city: 40 × 40 km about Weifang.
const (
	benchHalf   = 20e3
	benchSites  = 1000
	benchZones  = 500
	benchRoutes = 2000
	benchFixes  = 20000
	benchR      = 50.0
)

// benchFix is a GPS fix and the two routes of its truck's permit.
type benchFix struct {
	lon, lat float64
	permit   [2]int32
}

// benchCity is the built benchmark city and what its indexes cost.
type benchCity struct {
	sites, zones        *Polygons
	routes              *Lines
	fixes               []benchFix
	siteB, zoneB, lineB float64 // heap bytes of each built index
}

var (
	cityOnce sync.Once
	city     benchCity
)

// liveHeap returns the live heap in bytes after a collection.
func liveHeap() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc)
}

// irregular returns an irregular star-shaped ring of n vertices about c,
// diam metres across.
func irregular(rng *rand.Rand, c XY, diam float64, n int) orb.Ring {
	r := make(orb.Ring, 0, n+1)
	for i := range n {
		a := (float64(i) + 0.8*rng.Float64()) / float64(n) * 2 * math.Pi
		rr := diam / 2 * (0.5 + 0.5*rng.Float64())
		r = append(r, ll(c.X+rr*math.Cos(a), c.Y+rr*math.Sin(a)))
	}
	return append(r, r[0])
}

// walk returns a random walk of n vertices and about length metres along a
// street grid, kept inside the city.
func walk(rng *rand.Rand, n int, length float64) []XY {
	step := length / float64(n-1)
	p := XY{(2*rng.Float64() - 1) * benchHalf, (2*rng.Float64() - 1) * benchHalf}
	dirs := [4]XY{{1, 0}, {0, 1}, {-1, 0}, {0, -1}}
	d := rng.IntN(4)
	pts := []XY{p}
	for len(pts) < n {
		if rng.IntN(4) == 0 {
			d = (d + 1 + 2*rng.IntN(2)) % 4 // turn left or right
		}
		q := XY{p.X + dirs[d].X*step, p.Y + dirs[d].Y*step}
		if math.Abs(q.X) > benchHalf || math.Abs(q.Y) > benchHalf {
			d = (d + 2) % 4 // turn back at the city's edge
			continue
		}
		p = q
		pts = append(pts, p)
	}
	return pts
}

// buildCity builds the benchmark city once.
func buildCity() *benchCity {
	cityOnce.Do(func() {
		rng := rand.New(rand.NewPCG(42, 43))
		city := &city
		in := func() XY { return XY{(2*rng.Float64() - 1) * benchHalf, (2*rng.Float64() - 1) * benchHalf} }

		sites := make([]orb.MultiPolygon, benchSites)
		for i := range sites {
			sites[i] = orb.MultiPolygon{{irregular(rng, in(), 100+500*rng.Float64(), 8+rng.IntN(33))}}
		}
		zones := make([]orb.MultiPolygon, benchZones)
		for i := range zones {
			zones[i] = orb.MultiPolygon{{irregular(rng, in(), 300+2700*rng.Float64(), 8+rng.IntN(93))}}
		}
		walks := make([][]XY, benchRoutes)
		paths := make([]orb.LineString, benchRoutes)
		for i := range paths {
			walks[i] = walk(rng, 20+rng.IntN(381), 5e3+35e3*rng.Float64())
			for _, p := range walks[i] {
				paths[i] = append(paths[i], ll(p.X, p.Y))
			}
		}

		h0 := liveHeap()
		city.sites = NewPolygons(pl, sites, 0)
		h1 := liveHeap()
		city.zones = NewPolygons(pl, zones, 0)
		h2 := liveHeap()
		city.routes = NewLines(pl, paths, 0)
		h3 := liveHeap()
		city.siteB, city.zoneB, city.lineB = h1-h0, h2-h1, h3-h2

		city.fixes = make([]benchFix, benchFixes)
		for i := range city.fixes {
			f := &city.fixes[i]
			var q XY
			if i%2 == 0 { // on a route of its permit, 3–5 m of GPS noise
				rt := rng.IntN(benchRoutes)
				w := walks[rt]
				j := rng.IntN(len(w) - 1)
				t := rng.Float64()
				a := rng.Float64() * 2 * math.Pi
				n := 3 + 2*rng.Float64()
				q = XY{w[j].X + t*(w[j+1].X-w[j].X) + n*math.Cos(a), w[j].Y + t*(w[j+1].Y-w[j].Y) + n*math.Sin(a)}
				f.permit = [2]int32{int32(rt), int32(rng.IntN(benchRoutes))}
				if rng.IntN(2) == 0 {
					f.permit[0], f.permit[1] = f.permit[1], f.permit[0]
				}
			} else {
				q = in()
				f.permit = [2]int32{int32(rng.IntN(benchRoutes)), int32(rng.IntN(benchRoutes))}
			}
			f.lon, f.lat = pl.Unproject(q)
		}
		// The inputs must outlive the measurements, or their release
		// would be subtracted from the indexes' size.
		runtime.KeepAlive(sites)
		runtime.KeepAlive(zones)
		runtime.KeepAlive(paths)
	})
	return &city
}

// reportMemory reports the heap held by the built indexes.
func reportMemory(b *testing.B, c *benchCity) {
	b.ReportMetric(c.siteB/1e6, "sites-MB")
	b.ReportMetric(c.zoneB/1e6, "zones-MB")
	b.ReportMetric(c.lineB/1e6, "routes-MB")
}

var (
	sinkIDs []int32
	sinkD   float64
	sinkOK  bool
)

// BenchmarkFix is the geometry of one GPS fix as the engine does it:
// project, which sites, which zones, and the corridors of two permitted
// routes with r = 50 m.
func BenchmarkFix(b *testing.B) {
	c := buildCity()
	defer reportMemory(b, c)
	sites, zones := make([]int32, 0, 16), make([]int32, 0, 16)
	var ok0, ok1 bool
	in := 0 // fixes in either corridor, a check on the fixture (≈ 50 %)
	for _, f := range c.fixes {
		q := pl.Project(f.lon, f.lat)
		if _, ok := c.routes.Within(f.permit[0], q, benchR); ok {
			in++
		} else if _, ok := c.routes.Within(f.permit[1], q, benchR); ok {
			in++
		}
	}
	defer b.ReportMetric(100*float64(in)/float64(len(c.fixes)), "in-corridor-%")
	i := 0
	for b.Loop() {
		f := &c.fixes[i]
		if i++; i == len(c.fixes) {
			i = 0
		}
		q := pl.Project(f.lon, f.lat)
		sites = c.sites.Containing(q, sites[:0])
		zones = c.zones.Containing(q, zones[:0])
		_, ok0 = c.routes.Within(f.permit[0], q, benchR)
		_, ok1 = c.routes.Within(f.permit[1], q, benchR)
	}
	sinkIDs, sinkOK = zones, ok0 || ok1 || len(sites) > 0
}

// benchQuery runs one kind of query over the fixes.
func benchQuery(b *testing.B, f func(c *benchCity, fx *benchFix, q XY)) {
	c := buildCity()
	qs := make([]XY, len(c.fixes))
	for i, fx := range c.fixes {
		qs[i] = pl.Project(fx.lon, fx.lat)
	}
	i := 0
	for b.Loop() {
		f(c, &c.fixes[i], qs[i])
		if i++; i == len(qs) {
			i = 0
		}
	}
}

func BenchmarkFixProject(b *testing.B) {
	c := buildCity()
	i := 0
	var q XY
	for b.Loop() {
		f := &c.fixes[i]
		q = pl.Project(f.lon, f.lat)
		if i++; i == len(c.fixes) {
			i = 0
		}
	}
	sinkD = q.X
}

func BenchmarkFixSites(b *testing.B) {
	dst := make([]int32, 0, 16)
	benchQuery(b, func(c *benchCity, _ *benchFix, q XY) { dst = c.sites.Containing(q, dst[:0]) })
	sinkIDs = dst
}

func BenchmarkFixZones(b *testing.B) {
	dst := make([]int32, 0, 16)
	benchQuery(b, func(c *benchCity, _ *benchFix, q XY) { dst = c.zones.Containing(q, dst[:0]) })
	sinkIDs = dst
}

func BenchmarkFixWithin50(b *testing.B) {
	benchQuery(b, func(c *benchCity, f *benchFix, q XY) { sinkD, sinkOK = c.routes.Within(f.permit[0], q, 50) })
}

func BenchmarkFixWithin15(b *testing.B) {
	benchQuery(b, func(c *benchCity, f *benchFix, q XY) { sinkD, sinkOK = c.routes.Within(f.permit[0], q, 15) })
}

func BenchmarkFixWithin1000(b *testing.B) {
	benchQuery(b, func(c *benchCity, f *benchFix, q XY) { sinkD, sinkOK = c.routes.Within(f.permit[0], q, 1000) })
}

func BenchmarkFixRouteDistance(b *testing.B) {
	benchQuery(b, func(c *benchCity, f *benchFix, q XY) { sinkD = c.routes.Distance(f.permit[0], q) })
}

func BenchmarkFixSiteDistance(b *testing.B) {
	benchQuery(b, func(c *benchCity, f *benchFix, q XY) { sinkD = c.sites.Distance(f.permit[0]%benchSites, q) })
}

// BenchmarkBuild times building the three indexes of the city.
func BenchmarkBuild(b *testing.B) {
	c := buildCity()
	defer reportMemory(b, c)
	rng := rand.New(rand.NewPCG(1, 1))
	sites := make([]orb.MultiPolygon, benchSites)
	for i := range sites {
		sites[i] = orb.MultiPolygon{{irregular(rng, XY{(2*rng.Float64() - 1) * benchHalf, (2*rng.Float64() - 1) * benchHalf}, 100+500*rng.Float64(), 8+rng.IntN(33))}}
	}
	paths := make([]orb.LineString, benchRoutes)
	for i := range paths {
		for _, p := range walk(rng, 20+rng.IntN(381), 5e3+35e3*rng.Float64()) {
			paths[i] = append(paths[i], ll(p.X, p.Y))
		}
	}
	b.Run("sites", func(b *testing.B) {
		for b.Loop() {
			_ = NewPolygons(pl, sites, 0)
		}
	})
	b.Run("routes", func(b *testing.B) {
		for b.Loop() {
			_ = NewLines(pl, paths, 0)
		}
	})
}
