// Package citytest is a small city for tests that run the whole pipeline,
// across processes as well as in one: n trucks, each carrying a GPS
// terminal (TG001, TG002, ...) and a separate sensor box (TS001, ...), that
// load at one construction site, drive a 4 km road to one disposal site and
// tip there. Every other truck drives its first 150 s with the cover open,
// which is one uncovered_load alert raised and resolved; every truck makes
// one trip.
package citytest

import (
	"fmt"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/rules/geo"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

var plane = geo.NewPlane(119.16, 36.71)

// Registry returns the registry file of n trucks: fleets TG (GPS) and TS
// (sensors), secrets derived from fixed fleet keys.
func Registry(n int) string {
	return fmt.Sprintf(`fleets:
  - prefix: TG
    class: trucks
    count: %d
    width: 3
    key: citytest-gps-fleet-key-0123456789
  - prefix: TS
    class: trucks
    count: %d
    width: 3
    key: citytest-sensor-fleet-key-0123456789
`, n, n)
}

// Load returns the registry (Registry(n), parsed) and the city of n
// trucks, validated against it.
func Load(n int) (*config.Registry, *config.City, error) {
	reg, err := config.ParseRegistry("citytest-registry.yaml", []byte(Registry(n)))
	if err != nil {
		return nil, nil, err
	}
	c, err := city(n, reg)
	return reg, c, err
}

// GPS and Sensors are the device ids of truck k (1-based).
func GPS(k int) string     { return fmt.Sprintf("TG%03d", k) }
func Sensors(k int) string { return fmt.Sprintf("TS%03d", k) }

// Plate is truck k's plate.
func Plate(k int) string { return fmt.Sprintf("鲁G·C%04d", k) }

func square(x, y, m float64) orb.MultiPolygon {
	var ring orb.Ring
	for _, d := range [][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}, {-1, -1}} {
		lon, lat := plane.Unproject(geo.XY{X: x + d[0]*m/2, Y: y + d[1]*m/2})
		ring = append(ring, orb.Point{lon, lat})
	}
	return orb.MultiPolygon{orb.Polygon{ring}}
}

// city returns the city of n trucks, validated against reg.
func city(n int, reg *config.Registry) (*config.City, error) {
	a, b := plane.Unproject(geo.XY{X: 0, Y: 0})
	c2, d2 := plane.Unproject(geo.XY{X: 4000, Y: 0})
	c := &config.City{
		Name:      "citytest",
		Companies: []config.Company{{ID: "C1", Name: "潍坊测试运输有限公司"}},
		Sites: []config.Site{
			{ID: "CS", Name: "测试工地", Kind: config.SiteConstruction, Area: square(0, 0, 200)},
			{ID: "DS", Name: "测试消纳场", Kind: config.SiteDisposal, Area: square(4000, 0, 200)},
		},
		Routes: []config.Route{{ID: "R1", Name: "测试路", Path: orb.LineString{{a, b}, {c2, d2}}}},
	}
	for k := 1; k <= n; k++ {
		c.Trucks = append(c.Trucks, config.Truck{Plate: Plate(k), Company: "C1", Devices: []string{GPS(k), Sensors(k)}})
		c.Permits = append(c.Permits, config.Permit{ID: fmt.Sprintf("P%d", k), Truck: Plate(k),
			ValidFrom: config.Date{Year: 2026, Month: 1, Day: 1}, ValidTo: config.Date{Year: 2030, Month: 12, Day: 31},
			Windows: []config.Window{{Start: 0, End: 24 * 3600}}, Origins: []string{"CS"}, Disposal: []string{"DS"},
			Routes: []string{"R1"}})
	}
	if err := c.Validate(reg); err != nil {
		return nil, err
	}
	return c, nil
}

// TripSeconds is how long one truck's records last in event time.
const TripSeconds = 520

// Records returns every record of the n trucks, truck k starting k seconds
// after start, in event-time order; each device's seq counts from 1.
// Received is set to TS.
func Records(n int, start time.Time) []telemetry.Record {
	var per [][]telemetry.Record
	for k := 1; k <= n; k++ {
		per = append(per, truck(k, start.Add(time.Duration(k)*time.Second)))
	}
	// Merge by TS, stable by truck.
	var out []telemetry.Record
	idx := make([]int, n)
	for {
		best := -1
		for k := range per {
			if idx[k] < len(per[k]) && (best < 0 || per[k][idx[k]].TS.Before(per[best][idx[best]].TS)) {
				best = k
			}
		}
		if best < 0 {
			return out
		}
		out = append(out, per[best][idx[best]])
		idx[best]++
	}
}

// truck is truck k's records: 30 s loaded in the site, 400 s to the
// disposal site at 36 km/h (cover open for the first 150 s when k is
// even), 30 s tipping, then 60 s driving back empty.
func truck(k int, start time.Time) []telemetry.Record {
	var out []telemetry.Record
	var gseq, sseq uint64
	cover := telemetry.CoverClosed
	body := telemetry.BodyDown
	load := 15000.0
	sensors := func(at time.Time) {
		sseq++
		out = append(out, telemetry.Record{Kind: telemetry.KindSensors,
			Header:  telemetry.Header{Device: Sensors(k), Seq: sseq, TS: at, Received: at},
			Sensors: telemetry.SensorState{Cover: cover, Body: body, LoadKg: load, HasLoad: true}})
	}
	fix := func(at time.Time, x, speed float64) {
		gseq++
		lon, lat := plane.Unproject(geo.XY{X: x, Y: 0})
		out = append(out, telemetry.Record{Kind: telemetry.KindGPS,
			Header: telemetry.Header{Device: GPS(k), Seq: gseq, TS: at, Received: at},
			Fix:    telemetry.Fix{Lat: lat, Lon: lon, SpeedKmh: speed, Heading: 90, Sats: 10, Valid: true}})
	}
	x := 0.0
	for s := range TripSeconds {
		at := start.Add(time.Duration(s) * time.Second)
		prev := [3]any{cover, body, load}
		speed := 0.0
		switch {
		case s < 30: // loaded, standing in the site
		case s < 430: // driving to the disposal site
			speed = 36
			x += 10
			cover = telemetry.CoverClosed
			if k%2 == 0 && s < 180 {
				cover = telemetry.CoverOpen
			}
		case s < 460: // tipping
			x = 4000
			cover, body = telemetry.CoverOpen, telemetry.BodyRaised
			if s >= 445 {
				load = 0
			}
		default: // back empty
			body, cover = telemetry.BodyDown, telemetry.CoverClosed
			speed = 36
			x -= 10
		}
		if s == 0 || s%10 == 0 || prev != [3]any{cover, body, load} {
			sensors(at)
		}
		fix(at, x, speed)
	}
	return out
}
