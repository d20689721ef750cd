package simulators

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/config"
)

// The files WriteCity writes.
const (
	CityFile   = "city.yaml"
	SitesFile  = "sites.geojson"
	RoutesFile = "routes.geojson"
	// DistrictsFile is Weifang's district outlines (GCJ-02), reference data
	// the demo city names.
	DistrictsFile = "districts.geojson"
)

// WriteCity writes c into dir as config.LoadCity reads it: city.yaml (keys
// in a fixed order, one truck or permit a line, every string quoted),
// sites.geojson and routes.geojson (GeoJSON FeatureCollections, one feature
// a line, properties id, name and, for sites, kind and wash_area, a
// GeoJSON geometry object, when the site has one) from c.Sites and
// c.Routes, which city.yaml names whatever c.SitesFile and c.RoutesFile
// say. Districts are not written: city.yaml names c.DistrictsFile, if set,
// which must be there already. The output is a function of c alone:
// writing the same city twice gives the same bytes.
func WriteCity(dir string, c *config.City) error {
	y, err := cityYAML(c)
	if err != nil {
		return fmt.Errorf("write city %s: %w", dir, err)
	}
	sites, err := sitesGeoJSON(c.Sites)
	if err != nil {
		return fmt.Errorf("write city %s: %w", dir, err)
	}
	routes, err := routesGeoJSON(c.Routes)
	if err != nil {
		return fmt.Errorf("write city %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write city: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{CityFile, y}, {SitesFile, sites}, {RoutesFile, routes}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("write city: %w", err)
		}
	}
	return nil
}

// cityHeader heads city.yaml.
const cityHeader = `# The city model of the urbanwatch demo (config.City; see config/city.go and docs/rules.md):
# companies, trucks, permits, sites, routes, zones, rain gauges and depth points of the
# simulated Weifang that 'urbanwatch serve -demo' plays (simulators.DemoCity).
# Sites are 16-gon fences 60 m outside the circle trucks park in, so GPS noise never
# puts a truck at a site outside its fence. Companies, people and numbers are fictitious.
#
# Generated: go test ./simulators -run TestDemoCityFiles -update   (do not edit by hand)
`

// cityYAML renders the YAML of c.
func cityYAML(c *config.City) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(cityHeader)
	kv := func(k, v string) { fmt.Fprintf(&b, "%s: %s\n", k, v) }
	kv("name", q(c.Name))
	kv("region_code", q(c.RegionCode))
	kv("time_zone", q(c.TimeZone))
	if c.CRS != "" {
		kv("crs", q(c.CRS))
	}
	if c.Rules != (config.RuleSettings{}) {
		b.WriteString("rules:\n")
		writeStruct(&b, "  ", reflect.ValueOf(c.Rules))
	}
	kv("sites", "{file: "+q(SitesFile)+"}")
	kv("routes", "{file: "+q(RoutesFile)+"}")
	if d := c.DistrictsFile; d.File != "" {
		crs := ""
		if d.CRS != "" {
			crs = ", crs: " + q(d.CRS)
		}
		kv("districts", "{file: "+q(d.File)+crs+"}")
	}
	b.WriteString("\ncompanies:\n")
	for _, co := range c.Companies {
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n    contacts:\n", q(co.ID), q(co.Name))
		for _, ct := range co.Contacts {
			fmt.Fprintf(&b, "      - {name: %s, phone: %s, role: %s}\n", q(ct.Name), q(ct.Phone), q(ct.Role))
		}
	}
	b.WriteString("\ntrucks:\n")
	for _, t := range c.Trucks {
		fmt.Fprintf(&b, "  - {plate: %s, company: %s, devices: %s", q(t.Plate), q(t.Company), qList(t.Devices))
		if t.RatedLoadKg != 0 {
			fmt.Fprintf(&b, ", rated_load_kg: %s", num(t.RatedLoadKg))
		}
		b.WriteString("}\n")
	}
	b.WriteString("\npermits:\n")
	for _, p := range c.Permits {
		ws := make([]string, len(p.Windows))
		for i, w := range p.Windows {
			ws[i] = windowString(w)
		}
		fmt.Fprintf(&b, "  - {id: %s, truck: %s, valid_from: %s, valid_to: %s, windows: %s, origins: %s, disposal: %s, routes: %s",
			q(p.ID), q(p.Truck), q(dateString(p.ValidFrom)), q(dateString(p.ValidTo)), qList(ws),
			qList(p.Origins), qList(p.Disposal), qList(p.Routes))
		if p.CorridorM != 0 {
			fmt.Fprintf(&b, ", corridor_m: %s", num(p.CorridorM))
		}
		b.WriteString("}\n")
	}
	if len(c.Zones) > 0 {
		b.WriteString("\nzones:\n")
	}
	for _, z := range c.Zones {
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n", q(z.ID), q(z.Name))
		if z.Severity != "" {
			fmt.Fprintf(&b, "    severity: %s\n", q(z.Severity))
		}
		if len(z.Windows) > 0 {
			ws := make([]string, len(z.Windows))
			for i, w := range z.Windows {
				ws[i] = windowString(w)
			}
			fmt.Fprintf(&b, "    windows: %s\n", qList(ws))
		}
		cond, err := conditionYAML(z.Condition)
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", z.ID, err)
		}
		fmt.Fprintf(&b, "    condition: %s\n", cond)
		area, err := areaYAML(z.Area.Area)
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", z.ID, err)
		}
		fmt.Fprintf(&b, "    area: %s\n", area)
	}
	if len(c.Gauges) > 0 {
		b.WriteString("\ngauges:\n")
	}
	for _, g := range c.Gauges {
		fmt.Fprintf(&b, "  - {device: %s, name: %s, kind: %s", q(g.Device), q(g.Name), q(string(g.Kind)))
		if g.District != "" {
			fmt.Fprintf(&b, ", district: %s", q(g.District))
		}
		fmt.Fprintf(&b, ", lat: %s, lon: %s", num(g.Lat), num(g.Lon))
		if g.WarnCM != 0 {
			fmt.Fprintf(&b, ", warn_cm: %s", num(g.WarnCM))
		}
		if g.CloseCM != 0 {
			fmt.Fprintf(&b, ", close_cm: %s", num(g.CloseCM))
		}
		b.WriteString("}\n")
	}
	return b.Bytes(), nil
}

// conditionYAML renders a zone condition in flow style.
func conditionYAML(c config.ZoneCondition) (string, error) {
	var parts []string
	if c.AnyTruck {
		parts = append(parts, "any_truck: true")
	}
	if c.MaxSpeedKmh != 0 {
		parts = append(parts, "max_speed_kmh: "+num(c.MaxSpeedKmh))
	}
	if c.MinSpeedKmh != 0 {
		parts = append(parts, "min_speed_kmh: "+num(c.MinSpeedKmh))
	}
	if len(c.Cover) > 0 {
		parts = append(parts, "cover: "+qList(c.Cover))
	}
	if len(c.Body) > 0 {
		parts = append(parts, "body: "+qList(c.Body))
	}
	if c.Loaded != nil {
		parts = append(parts, "loaded: "+strconv.FormatBool(*c.Loaded))
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("empty condition")
	}
	return "{" + strings.Join(parts, ", ") + "}", nil
}

// areaYAML renders an area as a GeoJSON geometry object in flow style: a
// Polygon when it has one polygon, else a MultiPolygon.
func areaYAML(mp orb.MultiPolygon) (string, error) {
	if len(mp) == 0 {
		return "", fmt.Errorf("empty area")
	}
	poly := func(p orb.Polygon) string {
		rings := make([]string, len(p))
		for i, r := range p {
			pts := make([]string, len(r))
			for k, pt := range r {
				pts[k] = "[" + num(pt[0]) + ", " + num(pt[1]) + "]"
			}
			rings[i] = "[" + strings.Join(pts, ", ") + "]"
		}
		return "[" + strings.Join(rings, ", ") + "]"
	}
	if len(mp) == 1 {
		return "{type: Polygon, coordinates: " + poly(mp[0]) + "}", nil
	}
	ps := make([]string, len(mp))
	for i, p := range mp {
		ps[i] = poly(p)
	}
	return "{type: MultiPolygon, coordinates: [" + strings.Join(ps, ", ") + "]}", nil
}

// writeStruct writes the non-zero fields of a struct with yaml tags, in
// field order, durations as Go duration strings.
func writeStruct(b *bytes.Buffer, indent string, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" || fv.IsZero() {
			continue
		}
		switch {
		case fv.Type() == reflect.TypeFor[time.Duration]():
			fmt.Fprintf(b, "%s%s: %s\n", indent, tag, time.Duration(fv.Int()))
		case fv.Kind() == reflect.Struct:
			fmt.Fprintf(b, "%s%s:\n", indent, tag)
			writeStruct(b, indent+"  ", fv)
		case fv.Kind() == reflect.String:
			fmt.Fprintf(b, "%s%s: %s\n", indent, tag, q(fv.String()))
		case fv.Kind() == reflect.Float64:
			fmt.Fprintf(b, "%s%s: %s\n", indent, tag, num(fv.Float()))
		default:
			fmt.Fprintf(b, "%s%s: %v\n", indent, tag, fv.Interface())
		}
	}
}

// q quotes a YAML string (YAML double-quoted escapes are a superset of
// what strconv.Quote writes for valid UTF-8).
func q(s string) string { return strconv.Quote(s) }

func qList(ss []string) string {
	qs := make([]string, len(ss))
	for i, s := range ss {
		qs[i] = q(s)
	}
	return "[" + strings.Join(qs, ", ") + "]"
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// windowString writes a window as config reads it, e.g. "20:00-06:00".
func windowString(w config.Window) string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/3600, w.Start%3600/60, w.End/3600, w.End%3600/60)
}

// dateString writes a date as config reads it, e.g. "2026-01-01".
func dateString(d config.Date) string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// geoFeature is a GeoJSON Feature with its keys in a fixed order.
type geoFeature struct {
	Type       string      `json:"type"`
	Properties geoProps    `json:"properties"`
	Geometry   geoGeometry `json:"geometry"`
}

type geoProps struct {
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	Kind     string       `json:"kind,omitempty"`
	WashArea *geoGeometry `json:"wash_area,omitempty"`
}

type geoGeometry struct {
	Type        string `json:"type"`
	Coordinates any    `json:"coordinates"`
}

// featureCollection writes features one a line.
func featureCollection(fs []geoFeature) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"type": "FeatureCollection", "features": [` + "\n")
	for i, f := range fs {
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(f); err != nil {
			return nil, fmt.Errorf("feature %s: %w", f.Properties.ID, err)
		}
		b.Write(bytes.TrimRight(line.Bytes(), "\n"))
		if i < len(fs)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]}\n")
	return b.Bytes(), nil
}

func sitesGeoJSON(sites []config.Site) ([]byte, error) {
	fs := make([]geoFeature, len(sites))
	for i, s := range sites {
		g := areaGeometry(s.Area)
		if g == nil {
			g = &geoGeometry{Type: "MultiPolygon", Coordinates: s.Area}
		}
		fs[i] = geoFeature{Type: "Feature", Properties: geoProps{ID: s.ID, Name: s.Name, Kind: string(s.Kind),
			WashArea: areaGeometry(s.WashArea)}, Geometry: *g}
	}
	return featureCollection(fs)
}

// areaGeometry is an area as a GeoJSON Polygon when it has one polygon, else
// a MultiPolygon; nil for none.
func areaGeometry(mp orb.MultiPolygon) *geoGeometry {
	switch len(mp) {
	case 0:
		return nil
	case 1:
		return &geoGeometry{Type: "Polygon", Coordinates: mp[0]}
	}
	return &geoGeometry{Type: "MultiPolygon", Coordinates: mp}
}

func routesGeoJSON(routes []config.Route) ([]byte, error) {
	fs := make([]geoFeature, len(routes))
	for i, r := range routes {
		fs[i] = geoFeature{Type: "Feature", Properties: geoProps{ID: r.ID, Name: r.Name},
			Geometry: geoGeometry{Type: "LineString", Coordinates: r.Path}}
	}
	return featureCollection(fs)
}
