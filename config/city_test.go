package config

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

func testRegistry(t *testing.T) *Registry {
	t.Helper()
	reg, err := LoadRegistry("testdata/city/registry.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func shanghai(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestLoadCity(t *testing.T) {
	c, err := LoadCity("testdata/city/valid/city.yaml", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := []int{len(c.Companies), len(c.Trucks), len(c.Permits), len(c.Sites), len(c.Routes), len(c.Zones), len(c.Gauges)}; !reflect.DeepEqual(got, []int{2, 3, 3, 2, 2, 1, 2}) {
		t.Fatalf("counts companies..gauges = %v", got)
	}
	if c.Location == nil || c.Location.String() != "Asia/Shanghai" || c.RegionCode != "370700" || c.CRS != "wgs84" {
		t.Errorf("city settings: %v %q %q", c.Location, c.RegionCode, c.CRS)
	}

	// Plates are normalised in place, and lookups normalise theirs.
	for i, want := range []string{"鲁G·A1234", "鲁G·B2345", "鲁G·D12345"} {
		if c.Trucks[i].Plate != want {
			t.Errorf("truck %d plate %q, want %q", i, c.Trucks[i].Plate, want)
		}
	}
	if tr := c.TruckOf("WF-T4"); tr == nil || tr.Plate != "鲁G·B2345" {
		t.Errorf("TruckOf(WF-T4) = %v", tr)
	}
	if c.TruckOf("WF-T5") != nil || c.Truck("鲁g b2345") != c.TruckOf("WF-T2") || c.Company("C2").Name != "潍坊顺通渣土运输有限公司" {
		t.Error("truck and company lookups")
	}
	if ps := c.PermitsOf("鲁GB2345"); len(ps) != 1 || ps[0].ID != "P2" || ps[0].Truck != "鲁G·B2345" {
		t.Errorf("PermitsOf = %v", ps)
	}
	if s := c.Site("DS-1"); s == nil || s.Kind != SiteDisposal || len(s.Area) != 2 || s.Line != 7 {
		t.Errorf("Site(DS-1) = %+v", s)
	}
	if s := c.Site("CS-1"); s == nil || s.District != "高新区" || s.Line != 4 || s.Area[0][0][0] != (orb.Point{119.219, 36.719}) {
		t.Errorf("Site(CS-1) = %+v (a wgs84 file is not converted)", s)
	}
	if g := c.Gauge("WF-G2"); g == nil || g.Kind != GaugeDepth || g.WarnCM != 10 {
		t.Errorf("Gauge(WF-G2) = %+v", g)
	}

	// Left-out thresholds keep their defaults; set ones apply.
	want := DefaultRules()
	want.OffRoute.CorridorM = 80
	want.Waterlogging.WarnCM = 12
	if !reflect.DeepEqual(c.Rules, want) {
		t.Errorf("rules = %+v\nwant %+v", c.Rules, want)
	}
	if c.Permits[0].CorridorM != 80 || c.Permits[1].CorridorM != 30 {
		t.Errorf("corridors %g %g: want the rule's 80 and the permit's 30", c.Permits[0].CorridorM, c.Permits[1].CorridorM)
	}
	if w := c.Permits[0].Windows; len(w) != 1 || w[0] != (Window{20 * 3600, 6 * 3600}) {
		t.Errorf("P1 windows %v", w)
	}
	if w := c.Permits[2].Windows; len(w) != 1 || w[0] != (Window{0, 24 * 3600}) || c.Permits[2].ValidFrom != (Date{2026, 11, 15}) {
		t.Errorf("P3 windows %v from %v", w, c.Permits[2].ValidFrom)
	}
	z := &c.Zones[0]
	if z.Severity != "major" || z.Line != 63 || len(z.Area.Area) != 1 || len(z.Windows) != 2 {
		t.Errorf("zone %+v", z)
	}

	// The routes file is GCJ-02: converted at load, about 500 m west.
	r := c.Route("R-1")
	if r == nil || r.Line != 2 || r.Name != "东风街—北海路" {
		t.Fatalf("Route(R-1) = %+v", r)
	}
	lon, lat := GCJ02ToWGS84(119.2260, 36.7230)
	if r.Path[0] != (orb.Point{lon, lat}) {
		t.Errorf("route not converted: %v, want %v", r.Path[0], orb.Point{lon, lat})
	}

	// Validate again: nothing converted twice, nothing changes.
	before := r.Path[0]
	zone := z.Area.Area.Clone()
	if err := c.Validate(testRegistry(t)); err != nil {
		t.Fatal(err)
	}
	if r.Path[0] != before || !reflect.DeepEqual(z.Area.Area, zone) {
		t.Error("Validate is not idempotent")
	}

	files := c.Files()
	if len(files) != 3 || files[0] != "testdata/city/valid/city.yaml" || files[2] != filepath.Join("testdata/city/valid", "routes.geojson") {
		t.Errorf("Files = %v", files)
	}
}

// TestLoadCityErrors: each invalid city reports every problem at once, each
// with its file, line and reason, and nothing else.
func TestLoadCityErrors(t *testing.T) {
	reg := testRegistry(t)
	for _, c := range []struct {
		file string
		want []string
	}{
		{"unknown-key.yaml", []string{
			"unknown-key.yaml:7: field colour not found in type config.Truck",
		}},
		{"yaml-syntax.yaml", []string{
			"yaml-syntax.yaml: yaml: line 1: did not find expected '-' indicator",
		}},
		{"decode.yaml", []string{
			`decode.yaml:11: date "2026-13-01": want YYYY-MM-DD`,
			`decode.yaml:13: window "06:00-06:00": empty window`,
			`decode.yaml:13: window "25:00-02:00": start: "25:00": hours run to 23`,
			`decode.yaml:13: window "08:00": want HH:MM-HH:MM`,
			"decode.yaml:16: cannot unmarshal !!str `soon` into time.Duration",
			`decode.yaml:20: area: type "Point": want Polygon or MultiPolygon`,
			"decode.yaml:26: area: field properties not found",
		}},
		{"refs.yaml", []string{
			"refs.yaml:4: company C1: duplicate id (first at line 3)",
			`refs.yaml:6: truck "鲁G·1234": plate: want a province character, a letter and 5 or 6 letters or digits`,
			`refs.yaml:9: truck 鲁G·A1234: company "C9" is not among the companies`,
			"refs.yaml:10: truck 鲁G·A1234: duplicate id (first at line 8)",
			"refs.yaml:14: permit P1: truck 鲁G·Z9999 is not among the trucks",
			"refs.yaml:18: permit P1: origins: site DS-1 is a disposal site, want construction",
			"refs.yaml:20: permit P1: disposal: site CS-1 is a construction site, want disposal",
			`refs.yaml:21: permit P1: disposal: no site "DS-9"`,
			`refs.yaml:22: permit P1: routes: no route "R-9"`,
			"refs.yaml:23: permit P2: windows: at least one daily window is required",
			"refs.yaml:26: permit P2: valid_to 2026-11-30 is before valid_from 2026-12-01",
			"refs.yaml:27: permit P2: corridor_m 2: want 5 to 1000 m",
		}},
		{"devices.yaml", []string{
			"devices.yaml:9: truck 鲁G·A1234: device WF-X9 is not in the registry",
			"devices.yaml:13: truck 鲁G·B2345: device WF-T1 already belongs to truck 鲁G·A1234",
			"devices.yaml:14: truck 鲁G·B2345: device WF-G1 is registered as gauges, want trucks",
			"devices.yaml:16: gauge WF-T2: device WF-T2 is registered as trucks, want gauges",
			`devices.yaml:23: gauge WF-G2: kind "snow": want rain or depth`,
			"devices.yaml:24: gauge WF-G2: position [36.7, 119.16] ([lon, lat]) is off the globe: are lon and lat swapped?",
			"devices.yaml:26: gauge WF-G2: device listed twice",
			"devices.yaml:31: gauge WF-G2: warn_cm and close_cm are for depth points, not rain gauges",
			"devices.yaml:37: gauge WF-G3: want close_cm (25) > warn_cm (30)",
		}},
		{"zones.yaml", []string{
			"zones.yaml:5: zone Z1: area: outer ring intersects itself",
			`zones.yaml:7: zone Z1: condition: cover "ajar": want open, closed or fault`,
			`zones.yaml:8: zone Z1: condition: body "up": want raised or down`,
			`zones.yaml:9: zone Z1: severity "high": want minor, warning, major or critical`,
			"zones.yaml:10: zone Z2: condition: set at least one of",
			"zones.yaml:18: zone Z3: area: outer ring: position [36.7, 119.15] ([lon, lat]) is off the globe: are lon and lat swapped?",
			"zones.yaml:22: zone Z4: area: area is 710 km across, at most 50 km",
			"zones.yaml:23: zone Z4: condition: speeds must not be negative",
		}},
		{"rules.yaml", []string{
			"rules.yaml:4: rules.uncovered_load.dwell -5s: must be positive",
			`rules.yaml:5: rules.uncovered_load.severity "loud": want minor, warning, major or critical`,
			"rules.yaml:7: rules.off_route.corridor_m 2000: want 5 to 1000 m",
			"rules.yaml:8: rules.waterlogging: want close_cm (20) > warn_cm (30) > hysteresis_cm (3) ≥ 0",
			"rules.yaml:12: rules.rainstorm.red (40 mm in 3h0m0s) must be stricter than orange (50 mm in 3h0m0s)",
			"rules.yaml:15: rules.illegal_dumping.load_drop_pct 150: at most 100",
			`rules.yaml:16: time_zone "Mars/Olympus_Mons": unknown time zone`,
			`rules.yaml:17: region_code "37070": want a 6-digit GB/T 2260 code`,
			`rules.yaml:18: crs "bd09": want wgs84 or gcj02`,
		}},
		{"geo.yaml", []string{
			`geo.yaml:6: routes: crs "bd09": want wgs84 or gcj02`,
			"geo.yaml:8: districts: stat testdata/city/invalid/districts-missing.geojson: no such file or directory",
			`sites-bad.geojson:4: site S1: geometry type "Point": want Polygon or MultiPolygon`,
			"sites-bad.geojson:6: site S2: outer ring is not closed",
			`sites-bad.geojson:8: site S3: kind "dump": want construction or disposal`,
			"sites-bad.geojson:10: site S3: duplicate id (first at line 8)",
			"sites-bad.geojson:10: site S3: outer ring intersects itself near position 3",
			"sites-bad.geojson:12: site: id is required",
			"sites-bad.geojson:14: site S6: outer ring has no area",
			`sites-bad.geojson:16: feature 7: property id: {"x": 1}: want a string or a number`,
			"sites-bad.geojson:16: feature 7: Polygon coordinates: position [119.219]: want [lon, lat]",
			"sites-bad.geojson:16: site: id is required",
		}},
		{"routes.yaml", []string{
			"routes-bad2.geojson:2: route R1: a LineString needs at least 2 distinct positions",
			`routes-bad2.geojson:3: route R2: geometry type "Polygon": want LineString`,
			"routes-bad2.geojson:4: route R1: duplicate id (first at line 2)",
			"routes-bad2.geojson:4: route R1: position [219.3, 36.7] ([lon, lat]) is off the globe",
		}},
		{"syntax.yaml", []string{
			"syntax.geojson:3: invalid character ']' looking for beginning of value",
		}},
	} {
		t.Run(c.file, func(t *testing.T) {
			_, err := LoadCity(filepath.Join("testdata/city/invalid", c.file), reg)
			if err == nil {
				t.Fatal("loaded")
			}
			got := strings.Split(err.Error(), "\n")
			for i, want := range c.want {
				if i >= len(got) || !strings.Contains(got[i], "testdata/city/invalid/"+want) {
					t.Errorf("error %d: want %q\ngot:\n%s", i+1, want, err)
					return
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("%d errors, want %d:\n%s", len(got), len(c.want), err)
			}
		})
	}
}

// weifangSquare is a closed square of side m metres at (lon, lat).
func weifangSquare(lon, lat, m float64) orb.MultiPolygon {
	dLat := m / 2 / 111_000
	dLon := m / 2 / (111_000 * math.Cos(lat*math.Pi/180))
	return orb.MultiPolygon{{{{lon - dLon, lat - dLat}, {lon + dLon, lat - dLat}, {lon + dLon, lat + dLat},
		{lon - dLon, lat + dLat}, {lon - dLon, lat - dLat}}}}
}

// codeCity is a city as simulators and benchmarks build it.
func codeCity() *City {
	return &City{
		Companies: []Company{{ID: "C1", Name: "潍坊测试运输有限公司"}},
		Trucks:    []Truck{{Plate: "鲁g a0001", Company: "C1", Devices: []string{"WF-T1"}}},
		Permits: []Permit{{ID: "P1", Truck: "鲁G·A0001", ValidFrom: Date{2026, 1, 1}, ValidTo: Date{2026, 12, 31},
			Windows: []Window{{0, 24 * 3600}}, Origins: []string{"CS"}, Disposal: []string{"DS"}, Routes: []string{"R1"}}},
		Sites: []Site{
			{ID: "CS", Kind: SiteConstruction, Area: weifangSquare(119.10, 36.70, 200)},
			{ID: "DS", Kind: SiteDisposal, Area: weifangSquare(119.20, 36.70, 200)},
		},
		Routes: []Route{{ID: "R1", Path: orb.LineString{{119.10, 36.70}, {119.20, 36.70}}}},
		Zones: []Zone{{ID: "Z1", Area: GeoJSONGeometry{Area: weifangSquare(119.15, 36.70, 500)},
			Condition: ZoneCondition{AnyTruck: true}}},
		Gauges: []Gauge{{Device: "WF-G1", Kind: GaugeRain, Lat: 36.70, Lon: 119.15}},
	}
}

func TestCityValidateInCode(t *testing.T) {
	c := codeCity()
	c.CRS = "gcj02"
	zone := c.Zones[0].Area.Area.Clone()
	for range 2 {
		if err := c.Validate(nil); err != nil {
			t.Fatal(err)
		}
	}
	if c.TimeZone != "Asia/Shanghai" || c.Location.String() != "Asia/Shanghai" || c.RegionCode != "370700" {
		t.Errorf("defaults: %q %v %q", c.TimeZone, c.Location, c.RegionCode)
	}
	if !reflect.DeepEqual(c.Rules, DefaultRules()) || c.Zones[0].Severity != "warning" || c.Permits[0].CorridorM != 50 {
		t.Errorf("rule defaults: %+v, zone severity %q, corridor %g", c.Rules, c.Zones[0].Severity, c.Permits[0].CorridorM)
	}
	// A gcj02 city's zones and gauges are converted once, however often
	// it is validated; Sites and Routes set in code are WGS-84 already.
	lon, lat := GCJ02ToWGS84(zone[0][0][0][0], zone[0][0][0][1])
	if got := c.Zones[0].Area.Area[0][0][0]; got != (orb.Point{lon, lat}) {
		t.Errorf("zone vertex %v, want %v", got, orb.Point{lon, lat})
	}
	if lon, lat := GCJ02ToWGS84(119.15, 36.70); c.Gauges[0].Lon != lon || c.Gauges[0].Lat != lat {
		t.Errorf("gauge at %v,%v", c.Gauges[0].Lon, c.Gauges[0].Lat)
	}
	if c.Sites[0].Area[0][0][0][0] != weifangSquare(119.10, 36.70, 200)[0][0][0][0] {
		t.Error("a site set in code was converted")
	}
	if c.Trucks[0].Plate != "鲁G·A0001" || c.TruckOf("WF-T1") != &c.Trucks[0] || len(c.PermitsOf("鲁GA0001")) != 1 || c.Site("DS") == nil {
		t.Error("index")
	}
	if c.Path() != "" || len(c.Files()) != 0 {
		t.Error("a city built in code has no files")
	}

	// Problems in a city built in code name no file; with a registry,
	// devices are checked.
	c = codeCity()
	c.Permits[0].Origins = []string{"DS"}
	c.Permits[0].Windows = []Window{{3600, 3600}}
	c.Sites[1].Area = weifangSquare(119.20, 36.70, 60_000)
	c.Routes[0].Path = orb.LineString{{119.10, 36.70}}
	c.Gauges[0].Device = "G-unknown"
	err := c.Validate(testRegistry(t))
	for _, want := range []string{
		"\nsite DS: area is 85 km across",
		"\nroute R1: a LineString needs at least 2 distinct positions",
		"\npermit P1: window 1: empty window 01:00-01:00",
		"\npermit P1: origins: site DS is a disposal site, want construction",
		"\ngauge G-unknown: device G-unknown is not in the registry",
	} {
		if err == nil || !strings.Contains("\n"+err.Error(), want) {
			t.Errorf("want %q in:\n%v", want[1:], err)
		}
	}
}

func TestWindowAndDateText(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Window
		err  string
	}{
		{in: "20:00-06:00", want: Window{72000, 21600}},
		{in: " 9:30 - 11:00 ", want: Window{34200, 39600}},
		{in: "00:00-24:00", want: Window{0, 86400}},
		{in: "08:00-24:00", want: Window{28800, 86400}},
		{in: "22:00-00:00", want: Window{79200, 0}},
		{in: "06:00:30-07:00", want: Window{21630, 25200}},
		{in: "06:00-06:00", err: "empty window"},
		{in: "00:00-00:00", err: "empty window"},
		{in: "24:00-06:00", err: "hours run to 23"},
		{in: "08:00-24:30", err: "hours run to 23"},
		{in: "08:60-09:00", err: "minutes and seconds run to 59"},
		{in: "0800-0900", err: "want HH:MM"},
		{in: "08:00", err: "want HH:MM-HH:MM"},
		{in: "-1:00-02:00", err: "want HH:MM"},
	} {
		var w Window
		err := w.UnmarshalText([]byte(c.in))
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: err %v, want %q", c.in, err, c.err)
		case c.err == "" && (err != nil || w != c.want):
			t.Errorf("%q: %v %v, want %v", c.in, w, err, c.want)
		case c.err == "":
			var back Window
			if err := back.UnmarshalText([]byte(w.String())); err != nil || back != w {
				t.Errorf("%q: String %q does not read back: %v", c.in, w.String(), err)
			}
		}
	}
	var d Date
	if err := d.UnmarshalText([]byte("2026-02-28")); err != nil || d != (Date{2026, 2, 28}) || d.String() != "2026-02-28" {
		t.Errorf("date %v %v", d, err)
	}
	for _, bad := range []string{"2026-02-29", "2026-13-01", "26-01-01", "2026/01/01"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("date %q accepted", bad)
		}
	}
}

func TestWindowContains(t *testing.T) {
	h := func(hh, mm int) int { return hh*3600 + mm*60 }
	for _, c := range []struct {
		w    Window
		at   int
		want bool
	}{
		{Window{h(9, 0), h(11, 30)}, h(9, 0), true},
		{Window{h(9, 0), h(11, 30)}, h(11, 30) - 1, true},
		{Window{h(9, 0), h(11, 30)}, h(11, 30), false},
		{Window{h(9, 0), h(11, 30)}, h(8, 59), false},
		{Window{h(20, 0), h(6, 0)}, h(23, 59), true},
		{Window{h(20, 0), h(6, 0)}, 0, true},
		{Window{h(20, 0), h(6, 0)}, h(6, 0) - 1, true},
		{Window{h(20, 0), h(6, 0)}, h(6, 0), false},
		{Window{h(20, 0), h(6, 0)}, h(12, 0), false},
		{Window{0, h(24, 0)}, 0, true},
		{Window{0, h(24, 0)}, h(24, 0) - 1, true},
		{Window{h(22, 0), 0}, h(24, 0) - 1, true},
		{Window{h(22, 0), 0}, 0, false},
	} {
		if got := c.w.Contains(c.at); got != c.want {
			t.Errorf("%v.Contains(%d) = %v", c.w, c.at, got)
		}
	}
}

func TestPermitCheck(t *testing.T) {
	sh := shanghai(t)
	at := func(s string) time.Time {
		tt, err := time.ParseInLocation("2006-01-02 15:04:05", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	night := Permit{ValidFrom: Date{2026, 11, 1}, ValidTo: Date{2026, 11, 30},
		Windows: []Window{{20 * 3600, 6 * 3600}, {9 * 3600, 11*3600 + 1800}}}
	day := Permit{ValidFrom: Date{2026, 11, 15}, ValidTo: Date{2026, 11, 15}, Windows: []Window{{0, 24 * 3600}}}
	late := Permit{ValidFrom: Date{2026, 11, 1}, ValidTo: Date{2026, 11, 30}, Windows: []Window{{8 * 3600, 24 * 3600}}}
	monthEnd := Permit{ValidFrom: Date{2026, 10, 1}, ValidTo: Date{2026, 10, 31}, Windows: []Window{{22 * 3600, 4 * 3600}}}
	yearEnd := Permit{ValidFrom: Date{2026, 12, 1}, ValidTo: Date{2026, 12, 31}, Windows: []Window{{22 * 3600, 4 * 3600}}}
	for _, c := range []struct {
		name        string
		p           *Permit
		t           time.Time
		valid, open bool
	}{
		{"the evening before ValidFrom", &night, at("2026-10-31 21:00:00"), false, false},
		{"ValidFrom, the tail of a window opened the day before", &night, at("2026-11-01 01:00:00"), true, false},
		{"ValidFrom, just before the window", &night, at("2026-11-01 19:59:59"), true, false},
		{"ValidFrom, the window opens", &night, at("2026-11-01 20:00:00"), true, true},
		{"past midnight", &night, at("2026-11-02 00:00:00"), true, true},
		{"the last second of the night", &night, at("2026-11-02 05:59:59"), true, true},
		{"the night window closes", &night, at("2026-11-02 06:00:00"), true, false},
		{"the morning window", &night, at("2026-11-02 10:00:00"), true, true},
		{"the morning window's end is exclusive", &night, at("2026-11-02 11:30:00"), true, false},
		{"ValidTo evening", &night, at("2026-11-30 23:00:00"), true, true},
		{"after ValidTo, in the night that opened on it", &night, at("2026-12-01 01:00:00"), true, true},
		{"after ValidTo, that night over", &night, at("2026-12-01 06:00:00"), false, false},
		{"after ValidTo, a morning window", &night, at("2026-12-01 10:00:00"), false, false},
		{"after ValidTo, the evening", &night, at("2026-12-01 20:00:00"), false, false},
		{"a UTC instant read in Shanghai", &night, time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC), true, true},
		{"a UTC instant read in Shanghai, closed", &night, time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC), false, false},
		{"one day, its first second", &day, at("2026-11-15 00:00:00"), true, true},
		{"one day, its last second", &day, at("2026-11-15 23:59:59"), true, true},
		{"one day, the next midnight", &day, at("2026-11-16 00:00:00"), false, false},
		{"one day, the second before", &day, at("2026-11-14 23:59:59"), false, false},
		{"24:00 end, last second", &late, at("2026-11-10 23:59:59"), true, true},
		{"24:00 end does not cross midnight", &late, at("2026-11-11 00:00:00"), true, false},
		{"24:00 end on ValidTo", &late, at("2026-12-01 00:00:00"), false, false},
		{"crossing into a new month", &monthEnd, at("2026-11-01 03:00:00"), true, true},
		{"crossing into a new year", &yearEnd, at("2027-01-01 03:59:59"), true, true},
		{"a new year, that night over", &yearEnd, at("2027-01-01 04:00:00"), false, false},
		// Asia/Shanghai keeps UTC+8 all year: 12:00 UTC is 20:00 in July.
		{"no summer time", &night, time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC), false, false},
	} {
		valid, open := c.p.Check(c.t, sh)
		if valid != c.valid || open != c.open {
			t.Errorf("%s (%s): valid, open = %v, %v; want %v, %v", c.name, c.t.In(sh), valid, open, c.valid, c.open)
		}
	}
	summer := Permit{ValidFrom: Date{2026, 7, 1}, ValidTo: Date{2026, 7, 31}, Windows: []Window{{20 * 3600, 21 * 3600}}}
	if v, o := summer.Check(time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC), sh); !v || !o {
		t.Error("20:00 in July in Shanghai is 12:00 UTC")
	}
	if v, o := summer.Check(time.Date(2026, 7, 15, 20, 30, 0, 0, sh), nil); !v || !o {
		t.Error("a nil location reads t in its own")
	}
}

func TestZoneActive(t *testing.T) {
	sh := shanghai(t)
	z := Zone{Windows: []Window{{7 * 3600, 8*3600 + 1800}, {22 * 3600, 2 * 3600}}}
	for _, c := range []struct {
		at   string
		want bool
	}{
		{"06:59:59", false}, {"07:00:00", true}, {"08:29:59", true}, {"08:30:00", false},
		{"21:59:59", false}, {"22:00:00", true}, {"23:59:59", true}, {"00:00:00", true}, {"01:59:59", true}, {"02:00:00", false},
	} {
		tt, _ := time.ParseInLocation("2006-01-02 15:04:05", "2026-11-24 "+c.at, sh)
		if got := z.Active(tt, sh); got != c.want {
			t.Errorf("Active at %s = %v", c.at, got)
		}
		if got := z.Active(tt.UTC(), sh); got != c.want {
			t.Errorf("Active at %s given in UTC = %v", c.at, got)
		}
	}
	always := Zone{}
	if !always.Active(time.Now(), sh) {
		t.Error("a zone without windows is always active")
	}
}

func TestNormalizePlate(t *testing.T) {
	for _, c := range []struct {
		in, want string
		valid    bool
	}{
		{"鲁G·12345", "鲁G·12345", true},
		{"鲁G12345", "鲁G·12345", true},
		{"鲁G.12345", "鲁G·12345", true},
		{"鲁G 12345", "鲁G·12345", true},
		{" 鲁g·ab123 ", "鲁G·AB123", true},
		{"鲁GD12345", "鲁G·D12345", true},
		{"京A·F0236", "京A·F0236", true},
		{"鲁G·1234", "鲁G·1234", false},
		{"鲁G·1234567", "鲁G·1234567", false},
		{"鲁G··12345", "鲁G··12345", false},
		{"鲁G·1234挂", "鲁G·1234挂", false},
		{"XG12345", "XG12345", false},
		{"鲁1·12345", "鲁1·12345", false},
		{"鲁", "鲁", false},
		{"", "", false},
	} {
		got := NormalizePlate(c.in)
		if got != c.want || validPlate(got) != c.valid {
			t.Errorf("NormalizePlate(%q) = %q (valid %v), want %q (valid %v)", c.in, got, validPlate(got), c.want, c.valid)
		}
	}
}

func TestGCJ02ToWGS84(t *testing.T) {
	// The published coordtransform vector.
	gLon, gLat := wgs84ToGCJ02(116.404, 39.915)
	if math.Abs(gLon-116.41024449916938) > 1e-9 || math.Abs(gLat-39.91640428150164) > 1e-9 {
		t.Errorf("wgs84ToGCJ02(116.404, 39.915) = %v, %v", gLon, gLat)
	}
	for _, p := range [][2]float64{{119.16, 36.71}, {116.404, 39.915}, {121.47, 31.23}, {113.26, 23.13}, {87.6, 43.8}, {126.6, 45.75}} {
		gLon, gLat := wgs84ToGCJ02(p[0], p[1])
		lon, lat := GCJ02ToWGS84(gLon, gLat)
		if math.Abs(lon-p[0]) > 1e-6 || math.Abs(lat-p[1]) > 1e-6 {
			t.Errorf("round trip %v: %v, %v", p, lon, lat)
		}
	}
	// At Weifang the offset is a few hundred metres.
	lon, lat := GCJ02ToWGS84(119.16, 36.71)
	if d := geo.Distance(orb.Point{119.16, 36.71}, orb.Point{lon, lat}); d < 200 || d > 1000 {
		t.Errorf("offset at Weifang %.0f m", d)
	}
	// Outside China nothing moves.
	if lon, lat := GCJ02ToWGS84(2.35, 48.86); lon != 2.35 || lat != 48.86 {
		t.Errorf("Paris moved to %v, %v", lon, lat)
	}
}

// TestCityDistricts loads 潍坊's 12 districts, drawn in GCJ-02 with
// numeric adcodes, and names the district of WGS-84 positions.
func TestCityDistricts(t *testing.T) {
	abs, err := filepath.Abs("testdata/city/districts.geojson")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	city := filepath.Join(dir, "city.yaml")
	if err := os.WriteFile(city, []byte("name: 潍坊市\ndistricts:\n  file: "+abs+"\n  crs: gcj02\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCity(city, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Districts) != 12 || c.Districts[3].Name != "奎文区" || c.Districts[3].Adcode != "370705" {
		t.Fatalf("%d districts, the 4th %q %q", len(c.Districts), c.Districts[3].Name, c.Districts[3].Adcode)
	}
	for _, p := range []struct {
		lon, lat float64
		want     string
	}{
		{119.16, 36.71, "奎文区"},
		{118.48, 36.68, "青州市"},
		{119.41, 35.99, "诸城市"},
		{118.79, 36.86, "寿光市"},
		// 潍城区 on the raw GCJ-02 outline, 奎文区 once it is converted.
		{119.107, 36.71, "奎文区"},
		{117.0, 36.65, ""}, // 济南
	} {
		if got := c.DistrictAt(p.lon, p.lat); got != p.want {
			t.Errorf("DistrictAt(%v, %v) = %q, want %q", p.lon, p.lat, got, p.want)
		}
	}
	if got := codeCity().DistrictAt(119.16, 36.71); got != "" {
		t.Errorf("a city without districts: %q", got)
	}
}

func TestCityWatcher(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("city.yaml", "name: 潍坊市\nroutes:\n  file: routes.geojson\n")
	routes := `{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"id": "R1"},
 "geometry": {"type": "LineString", "coordinates": [[119.1, 36.7], [119.2, 36.7]]}}]}`
	write("routes.geojson", routes)
	c, err := LoadCity(filepath.Join(dir, "city.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 10)
	w := NewCityWatcher(c, 5*time.Millisecond, func() { changed <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitPolls := func(n int64) {
		t.Helper()
		target := w.polls.Load() + n
		deadline := time.Now().Add(10 * time.Second)
		for w.polls.Load() < target {
			if time.Now().After(deadline) {
				t.Fatal("the watcher does not poll")
			}
			time.Sleep(time.Millisecond)
		}
	}
	expect := func(what string, want bool) {
		t.Helper()
		if !want {
			waitPolls(3)
			select {
			case <-changed:
				t.Fatalf("%s: reported as a change", what)
			default:
			}
			return
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no change reported", what)
		}
	}
	expect("nothing", false)

	// Same bytes, new modification time: the hash says no change.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "routes.geojson"), later, later); err != nil {
		t.Fatal(err)
	}
	expect("a touch", false)

	write("routes.geojson", strings.Replace(routes, "119.2", "119.3", 1))
	expect("a GeoJSON file edited", true)
	expect("after the change", false)

	write("city.yaml", "name: 潍坊\nroutes:\n  file: routes.geojson\n")
	expect("the city file edited", true)

	// A removed file is skipped until it is back.
	if err := os.Remove(filepath.Join(dir, "routes.geojson")); err != nil {
		t.Fatal(err)
	}
	expect("a file removed", false)
	write("routes.geojson", routes)
	expect("a file back", true)

	// Watch takes another city's files.
	var calls atomic.Int32
	w2 := NewCityWatcher(codeCity(), 0, func() { calls.Add(1) })
	if w2.interval != 2*time.Second || len(w2.files) != 0 {
		t.Errorf("defaults: %v %v", w2.interval, w2.files)
	}
	w2.Watch(c)
	if len(w2.files) != 2 {
		t.Errorf("Watch: %d files", len(w2.files))
	}
}

func TestConfigCityResolved(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte("registry: r.yaml\ncity: city/city.yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.City != filepath.Join(dir, "city/city.yaml") {
		t.Errorf("city %q not resolved against the config file", cfg.City)
	}
}

// TestSiteWashArea reads a site's wash_area property and refuses one that
// is not inside the site or not a polygon; a truck's rated load must be
// sensible.
func TestSiteWashArea(t *testing.T) {
	site := func(wash string) string {
		return `{"type":"FeatureCollection","features":[
{"type":"Feature","properties":{"id":"CS01","name":"工地","kind":"construction","wash_area":` + wash + `},
 "geometry":{"type":"Polygon","coordinates":[[[119.10,36.70],[119.11,36.70],[119.11,36.71],[119.10,36.71],[119.10,36.70]]]}}]}`
	}
	load := func(sites, trucks string) (*City, error) {
		dir := t.TempDir()
		for name, s := range map[string]string{"sites.geojson": sites,
			"city.yaml": "name: 潍坊市\nsites: {file: sites.geojson}\ncompanies: [{id: C1, name: 公司}]\ntrucks:\n" + trucks} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return LoadCity(filepath.Join(dir, "city.yaml"), nil)
	}
	truck := "  - {plate: 鲁G·A0001, company: C1, rated_load_kg: 18000}\n"
	c, err := load(site(`{"type":"Polygon","coordinates":[[[119.101,36.701],[119.102,36.701],[119.102,36.702],[119.101,36.702],[119.101,36.701]]]}`), truck)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sites[0].WashArea) != 1 || c.Trucks[0].RatedLoadKg != 18000 {
		t.Fatalf("wash area %v, rated %v", c.Sites[0].WashArea, c.Trucks[0].RatedLoadKg)
	}
	if c, err = load(site("null"), truck); err != nil || c.Sites[0].WashArea != nil {
		t.Fatalf("no wash area: %v %v", err, c.Sites[0].WashArea)
	}
	for wash, want := range map[string]string{
		`{"type":"Polygon","coordinates":[[[119.101,36.701],[119.20,36.701],[119.20,36.702],[119.101,36.702],[119.101,36.701]]]}`: "not inside the site",
		`{"type":"Point","coordinates":[119.101,36.701]}`:                                                                         "want Polygon or MultiPolygon",
		`"east gate"`: "wash_area",
	} {
		if _, err := load(site(wash), truck); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("wash_area %s: %v, want an error saying %q", wash, err, want)
		}
	}
	if _, err := load(site("null"), "  - {plate: 鲁G·A0001, company: C1, rated_load_kg: -5}\n"); err == nil ||
		!strings.Contains(err.Error(), "rated_load_kg") {
		t.Errorf("negative rated load: %v", err)
	}
}
