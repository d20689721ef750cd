package simulators

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"

	"github.com/urbanwatch/urbanwatch/config"
)

var update = flag.Bool("update", false, "rewrite the generated demo city files in deploy/demo")

// The demo city in deploy/demo: the demo registry's fleets (trucks, rain
// gauges, depth points) under the demo seed.
const (
	demoDir         = "../deploy/demo"
	demoTrucks      = 2000
	demoRainGauges  = 200
	demoDepthPoints = 100
)

// TestDemoCityFiles checks that the committed demo city is what DemoCity
// generates, byte for byte.
func TestDemoCityFiles(t *testing.T) {
	c := DemoCity(demoTrucks, demoRainGauges, demoDepthPoints, DemoSeed)
	c.DistrictsFile = config.GeoFile{File: DistrictsFile, CRS: "gcj02"}
	if *update {
		if err := WriteCity(demoDir, c); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if err := WriteCity(dir, c); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CityFile, SitesFile, RoutesFile} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(demoDir, f))
		if err != nil {
			t.Fatalf("%v\nregenerate with: go test ./simulators -run TestDemoCityFiles -update", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("deploy/demo/%s differs from what DemoCity generates (%d bytes, want %d)\n"+
				"regenerate with: go test ./simulators -run TestDemoCityFiles -update", f, len(want), len(got))
		}
	}
}

// TestDemoCityLoads reads the committed demo city back with LoadCity
// against the demo registry and finds exactly what DemoCity built.
func TestDemoCityLoads(t *testing.T) {
	reg, err := config.LoadRegistry(filepath.Join(demoDir, "registry.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.LoadCity(filepath.Join(demoDir, CityFile), reg)
	if err != nil {
		t.Fatal(err)
	}
	want := DemoCity(demoTrucks, demoRainGauges, demoDepthPoints, DemoSeed)
	if err := want.Validate(reg); err != nil {
		t.Fatal(err)
	}
	check := func(what string, g, w any) {
		t.Helper()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: loaded differs from built", what)
		}
	}
	check("companies", got.Companies, want.Companies)
	check("trucks", got.Trucks, want.Trucks)
	check("permits", got.Permits, want.Permits)
	check("gauges", got.Gauges, want.Gauges)
	if len(got.Sites) != len(want.Sites) || len(got.Routes) != len(want.Routes) || len(got.Zones) != len(want.Zones) {
		t.Fatalf("loaded %d sites, %d routes, %d zones; built %d, %d, %d", len(got.Sites), len(got.Routes),
			len(got.Zones), len(want.Sites), len(want.Routes), len(want.Zones))
	}
	for i := range got.Sites {
		g, w := got.Sites[i], want.Sites[i]
		g.Line = 0
		check("site "+w.ID, g, w)
	}
	for i := range got.Routes {
		g, w := got.Routes[i], want.Routes[i]
		g.Line = 0
		check("route "+w.ID, g, w)
	}
	for i := range got.Zones {
		g, w := got.Zones[i], want.Zones[i]
		g.Line, w.Line = 0, 0
		check("zone "+w.ID, g, w)
	}
	// The offence rules' inputs: every truck rated 20–31 t, every
	// construction site but two with a wash area inside its fence.
	washes := 0
	for i, tr := range got.Trucks {
		if tr.RatedLoadKg < 20000 || tr.RatedLoadKg > 31000 || tr.RatedLoadKg != want.Trucks[i].RatedLoadKg {
			t.Errorf("truck %s: rated load %v kg, built %v", tr.Plate, tr.RatedLoadKg, want.Trucks[i].RatedLoadKg)
		}
	}
	for _, s := range got.Sites {
		if s.WashArea != nil {
			washes++
			if s.Kind != config.SiteConstruction {
				t.Errorf("site %s: a wash area at a %s site", s.ID, s.Kind)
			}
		}
	}
	if washes != 10 {
		t.Errorf("%d sites with a wash area, want 10", washes)
	}
	if got.Rules != config.DefaultRules() {
		t.Error("demo city rules are not the defaults")
	}
	if len(got.Districts) != 12 {
		t.Errorf("the demo city has %d district outlines, want Weifang's 12", len(got.Districts))
	}
}

// TestDemoCityMatchesRun checks the city against what Run plays: the
// devices Run takes from the demo registry, the trucks' permits, and that
// a truck parked or turning at a site is inside that site's fence and a
// driving truck on one of its permit's routes.
func TestDemoCityMatchesRun(t *testing.T) {
	const trucks, rain, depth = 40, 12, 8
	reg, err := config.LoadRegistry(filepath.Join(demoDir, "registry.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tc, rc, dc, err := selectDevices(Options{Registry: reg, Trucks: trucks, RainGauges: rain, DepthPoints: depth})
	if err != nil {
		t.Fatal(err)
	}
	c := DemoCity(trucks, rain, depth, 7)
	if err := c.Validate(reg); err != nil {
		t.Fatal(err)
	}
	for i, cr := range tc {
		if d := c.Trucks[i].Devices[0]; d != cr.id {
			t.Fatalf("truck %d: device %s, Run plays %s", i, d, cr.id)
		}
	}
	for i, cr := range append(rc, dc...) {
		if d := c.Gauges[i].Device; d != cr.id {
			t.Fatalf("gauge %d: device %s, Run plays %s", i, d, cr.id)
		}
	}
	w := mustWorld()
	for i, g := range newRainGauges(rain, 7, nil, time.Time{}, time.Minute) {
		lat, lon := g.p.latLon()
		if cg := c.Gauges[i]; math.Abs(cg.Lat-lat) > 1e-7 || math.Abs(cg.Lon-lon) > 1e-7 {
			t.Errorf("rain gauge %d at %v,%v, Run places it at %v,%v", i, cg.Lat, cg.Lon, lat, lon)
		}
	}
	start := time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC)
	for i := range 12 {
		p := c.Permits[i]
		perm := PermitFor(7, i)
		if p.Origins[0] != perm.Site || p.Disposal[0] != perm.Disposal {
			t.Fatalf("truck %d: permit %v→%v, Run drives %s→%s", i, p.Origins, p.Disposal, perm.Site, perm.Disposal)
		}
		var paths [][]xy
		for _, id := range p.Routes {
			var path []xy
			for _, q := range c.Route(id).Path {
				path = append(path, toXY(q[1], q[0]))
			}
			paths = append(paths, path)
		}
		tr := newTruck(w, 7, i, truckHasLoad(i))
		for k := range 3 * 3600 {
			tr.Step(start.Add(time.Duration(k)*time.Second), nil)
			pos := tr.truePos()
			lat, lon := pos.latLon()
			pt := orb.Point{lon, lat}
			switch tr.phase {
			case phDriving:
				best := math.Inf(1)
				for _, path := range paths {
					best = math.Min(best, distToPath(path, pos))
				}
				if best > 1 {
					t.Fatalf("truck %d at %v: %.1f m from its permitted routes", i, pt, best)
				}
			default:
				id := p.Origins[0]
				if tr.phase == phQueueing || tr.phase == phDumping || tr.phase == phLeaving {
					id = p.Disposal[0]
				}
				if !planar.MultiPolygonContains(c.Site(id).Area, pt) {
					t.Fatalf("truck %d in phase %d at %v: outside the fence of %s", i, tr.phase, pt, id)
				}
				for _, s := range Sites() {
					if d := dist(pos, toXY(s.Lat, s.Lon)); s.ID == id && d > s.RadiusM {
						t.Fatalf("truck %d in phase %d: %.1f m from the centre of %s, want ≤ %v", i, tr.phase, d, id, s.RadiusM)
					}
				}
			}
		}
	}
}

// distToPath is the distance from p to a polyline, metres.
func distToPath(path []xy, p xy) float64 {
	best := math.Inf(1)
	for k := 1; k < len(path); k++ {
		a, b := path[k-1], path[k]
		ab := b.sub(a)
		f := 0.0
		if l := ab.dot(ab); l > 0 {
			f = clamp(p.sub(a).dot(ab)/l, 0, 1)
		}
		best = math.Min(best, dist(p, lerp(a, b, f)))
	}
	return best
}
