package rules

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules/geo"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// A city at the scale the issue asks about: 20,000 trucks, 1,000 sites,
// 500 zones and 2,000 route corridors over 40 × 40 km.
const (
	benchTrucks = 20000
	benchSites  = 1000
	benchZones  = 500
	benchRoutes = 2000
)

// benchCity builds the large city and, per truck, points along its route.
func benchCity(tb testing.TB) (*config.City, [][]geo.XY) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	c := &config.City{Companies: []config.Company{{ID: "C1", Name: "bench"}}}
	half := 20000.0
	for i := range benchSites {
		kind := config.SiteConstruction
		if i%10 == 0 {
			kind = config.SiteDisposal
		}
		c.Sites = append(c.Sites, config.Site{ID: fmt.Sprintf("S%04d", i), Name: "site", Kind: kind,
			Area: square(rng.Float64()*2*half-half, rng.Float64()*2*half-half, 100+rng.Float64()*400)})
	}
	for i := range benchZones {
		c.Zones = append(c.Zones, config.Zone{ID: fmt.Sprintf("Z%03d", i), Name: "zone",
			Area:      config.GeoJSONGeometry{Area: square(rng.Float64()*2*half-half, rng.Float64()*2*half-half, 300+rng.Float64()*2700)},
			Windows:   []config.Window{{Start: 7 * 3600, End: 8*3600 + 1800}},
			Condition: config.ZoneCondition{AnyTruck: true}})
	}
	paths := make([][]geo.XY, benchRoutes)
	for i := range benchRoutes {
		// A random walk along a 500 m grid, 20–400 vertices.
		p := geo.XY{X: math.Round((rng.Float64()*2*half-half)/500) * 500, Y: math.Round((rng.Float64()*2*half-half)/500) * 500}
		pts := []geo.XY{p}
		for range 20 + rng.IntN(60) {
			step := 500.0 * float64(1+rng.IntN(3))
			switch rng.IntN(4) {
			case 0:
				p.X += step
			case 1:
				p.X -= step
			case 2:
				p.Y += step
			default:
				p.Y -= step
			}
			p.X, p.Y = math.Max(-half, math.Min(half, p.X)), math.Max(-half, math.Min(half, p.Y))
			pts = append(pts, p)
		}
		paths[i] = pts
		c.Routes = append(c.Routes, config.Route{ID: fmt.Sprintf("R%04d", i), Name: "route", Path: line(pts...)})
	}
	var track [][]geo.XY
	for i := range benchTrucks {
		plate := fmt.Sprintf("鲁G·B%04d", i%10000)
		if i >= 10000 {
			plate = fmt.Sprintf("鲁G·C%04d", i%10000)
		}
		dev := fmt.Sprintf("T%05d", i)
		c.Trucks = append(c.Trucks, config.Truck{Plate: plate, Company: "C1", Devices: []string{dev}})
		r1, r2 := rng.IntN(benchRoutes), rng.IntN(benchRoutes)
		c.Permits = append(c.Permits, config.Permit{ID: "P" + dev, Truck: plate,
			ValidFrom: config.Date{Year: 2026, Month: 1, Day: 1}, ValidTo: config.Date{Year: 2026, Month: 12, Day: 31},
			Windows: []config.Window{{Start: 20 * 3600, End: 6 * 3600}},
			Origins: []string{c.Sites[1+rng.IntN(9)].ID}, Disposal: []string{c.Sites[0].ID},
			Routes: []string{c.Routes[r1].ID, c.Routes[r2].ID}})
		// 64 points along its first route, 3–5 m of noise.
		var pts []geo.XY
		path := paths[r1]
		for k := range 64 {
			f := float64(k) / 64 * float64(len(path)-1)
			a, b := path[int(f)], path[min(int(f)+1, len(path)-1)]
			w := f - math.Floor(f)
			pts = append(pts, geo.XY{X: a.X + (b.X-a.X)*w + 4*rng.NormFloat64(), Y: a.Y + (b.Y-a.Y)*w + 4*rng.NormFloat64()})
		}
		track = append(track, pts)
	}
	if err := c.Validate(nil); err != nil {
		tb.Fatal(err)
	}
	return c, track
}

// benchRecords precomputes one fix per truck per second for n rounds, with
// a sensors message every fifth fix: the message mix of a city at 1 Hz.
func benchRecords(track [][]geo.XY, rounds int) []telemetry.Record {
	start := time.Date(2026, 11, 24, 21, 0, 0, 0, time.FixedZone("CST", 8*3600))
	var recs []telemetry.Record
	for r := range rounds {
		at := start.Add(time.Duration(r) * time.Second)
		for i, pts := range track {
			dev := fmt.Sprintf("T%05d", i)
			p := pts[r%len(pts)]
			lon, lat := origin.Unproject(p)
			recs = append(recs, telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Device: dev, TS: at},
				Fix: telemetry.Fix{Lat: lat, Lon: lon, SpeedKmh: 35, Sats: 10, Valid: true}})
			if (r+i)%5 == 0 {
				recs = append(recs, telemetry.Record{Kind: telemetry.KindSensors, Header: telemetry.Header{Device: dev, TS: at},
					Sensors: telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyDown, LoadKg: 16000, HasLoad: true}})
			}
		}
	}
	return recs
}

// BenchmarkEngineCity measures one message through every rule at city
// scale: ns/op is per message (fixes and sensors in the 5:1 mix), and it
// reports the p99 of single-message latency and messages/s on one core.
func BenchmarkEngineCity(b *testing.B) {
	c, track := benchCity(b)
	recs := benchRecords(track, 8)
	events := 0
	e, err := New(Options{City: c, Sink: SinkFunc(func(*telemetry.Alert) { events++ })})
	if err != nil {
		b.Fatal(err)
	}
	for i := range recs[:len(recs)/8] { // warm: every truck has state
		e.Process(&recs[i])
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	shift := time.Duration(0)
	for i := range b.N {
		k := i % len(recs)
		if k == 0 && i > 0 {
			shift += 8 * time.Second
		}
		r := recs[k]
		r.TS = r.TS.Add(shift + time.Second*8)
		t := time.Now()
		e.Process(&r)
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkMemoryPerTruck reports the heap the rule state of one tracked
// truck takes, beside the geometry (which is measured before the trucks
// report).
func BenchmarkMemoryPerTruck(b *testing.B) {
	c, track := benchCity(b)
	recs := benchRecords(track, 2)
	for range b.N {
		var before, after runtime.MemStats
		e, err := New(Options{City: c, Sink: SinkFunc(func(*telemetry.Alert) {})})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range recs {
			e.Process(&recs[i])
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(e.trucks)), "B/truck")
		runtime.KeepAlive(e)
	}
}
