package simulators

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// Site is a construction site (工地) or disposal site (消纳场) of the
// simulated city, for building the fences of a demo configuration.
type Site struct {
	ID       string // "CS01"…"CS12" (construction), "DS1"…"DS4" (disposal)
	Name     string
	Disposal bool
	Lat, Lon float64 // WGS-84 centre
	RadiusM  float64 // trucks at the site stay within this radius of the centre (GPS noise aside)
}

// Road is one named road of the simulated grid as a WGS-84 polyline of
// [lon, lat] pairs (GeoJSON order), west→east or south→north.
type Road struct {
	Name string
	Line [][2]float64
}

// Permit is the 准运证 a simulated truck drives under: it loads at Site and
// tips at Disposal, driving along Route ([lon, lat] pairs, site to disposal;
// the return trip uses the same roads).
type Permit struct {
	Site, Disposal string   // site ids
	Roads          []string // road names in driving order
	Route          [][2]float64
}

// Sites returns the construction and disposal sites. They are fixed: the
// same for every seed.
func Sites() []Site {
	w := mustWorld()
	var out []Site
	for _, s := range w.construction {
		out = append(out, s.Site)
	}
	for _, s := range w.disposal {
		out = append(out, s.Site)
	}
	return out
}

// Roads returns the synthetic road grid (site access roads excluded).
func Roads() []Road {
	var out []Road
	for _, s := range ewStreets {
		r := Road{Name: s.name}
		for _, n := range nsRoads {
			r.Line = append(r.Line, [2]float64{n.lon, s.lat})
		}
		out = append(out, r)
	}
	for _, n := range nsRoads {
		r := Road{Name: n.name}
		for _, s := range ewStreets {
			r.Line = append(r.Line, [2]float64{n.lon, s.lat})
		}
		out = append(out, r)
	}
	return out
}

// PermitFor returns the permit of the truck-th simulated truck (0-based, in
// the order Run takes trucks from the registry) under seed.
func PermitFor(seed int64, truck int) Permit {
	w := mustWorld()
	c, d := assignPermit(truckRand(seed, truck), w)
	r := w.out[c][d]
	p := Permit{Site: r.From, Disposal: r.To, Roads: r.Roads}
	for _, pt := range r.pts {
		lat, lon := pt.latLon()
		p.Route = append(p.Route, [2]float64{lon, lat})
	}
	return p
}

// truckRand is the random stream of one truck: its permit, then its night.
func truckRand(seed int64, truck int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x7275636b<<32|uint64(truck)))
}

// assignPermit draws a truck's construction and disposal site: the nearest
// disposal site by route length three times in four, another otherwise.
func assignPermit(rng *rand.Rand, w *world) (c, d int) {
	c = rng.IntN(len(w.construction))
	best := 0
	for i := range w.disposal {
		if w.out[c][i].total < w.out[c][best].total {
			best = i
		}
	}
	d = best
	if rng.Float64() >= 0.75 {
		d = (best + 1 + rng.IntN(len(w.disposal)-1)) % len(w.disposal)
	}
	return c, d
}

// theWorld is the city, built once: it is immutable and shared by every Run
// and by Sites, Roads and PermitFor.
var theWorld = sync.OnceValues(newWorld)

func mustWorld() *world {
	w, err := theWorld()
	if err != nil {
		panic(fmt.Sprintf("simulators: synthetic city: %v", err)) // static data; covered by tests
	}
	return w
}
