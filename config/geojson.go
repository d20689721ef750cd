package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
	"github.com/paulmach/orb/planar"
	"gopkg.in/yaml.v3"
)

// maxSiteAcrossM bounds a site or zone: one larger is surely a units or
// ordering mistake ([lat, lon] swapped, a missing decimal point).
const maxSiteAcrossM = 50_000

// UnmarshalYAML reads a GeoJSON geometry object, {type, coordinates}, of
// type Polygon or MultiPolygon; a Polygon becomes a one-element
// MultiPolygon. Other keys are errors, as everywhere in the city file.
func (g *GeoJSONGeometry) UnmarshalYAML(n *yaml.Node) error {
	bad := func(line int, format string, args ...any) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: area: %s", line, fmt.Sprintf(format, args...))}}
	}
	if n.Kind != yaml.MappingNode {
		return bad(n.Line, "want a GeoJSON geometry {type: Polygon, coordinates: [[[lon, lat], ...]]}")
	}
	var typ string
	var coords *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "type":
			typ = v.Value
		case "coordinates":
			coords = v
		default:
			return bad(k.Line, "field %s not found: want type and coordinates", k.Value)
		}
	}
	if coords == nil {
		return bad(n.Line, "coordinates are missing")
	}
	var err error
	switch typ {
	case "Polygon":
		var c [][][]float64
		if err = coords.Decode(&c); err == nil {
			var p orb.Polygon
			if p, err = toPolygon(c); err == nil {
				g.Area = orb.MultiPolygon{p}
			}
		}
	case "MultiPolygon":
		var c [][][][]float64
		if err = coords.Decode(&c); err == nil {
			g.Area, err = toMultiPolygon(c)
		}
	default:
		return bad(n.Line, "type %q: want Polygon or MultiPolygon", typ)
	}
	if err != nil {
		return bad(coords.Line, "%s coordinates: %v", typ, unprefixYAML(err))
	}
	return nil
}

// unprefixYAML strips yaml.v3's "yaml: unmarshal errors:\n  line N: "
// framing from an error that is reported with its own line.
func unprefixYAML(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		s := te.Errors[0]
		if _, rest, ok := strings.Cut(s, ": "); ok && strings.HasPrefix(s, "line ") {
			return rest
		}
		return s
	}
	return err.Error()
}

func toPosition(p []float64) (orb.Point, error) {
	if len(p) < 2 {
		return orb.Point{}, fmt.Errorf("position %v: want [lon, lat]", p)
	}
	return orb.Point{p[0], p[1]}, nil
}

func toRing(c [][]float64) (orb.Ring, error) {
	r := make(orb.Ring, 0, len(c))
	for _, p := range c {
		pt, err := toPosition(p)
		if err != nil {
			return nil, err
		}
		r = append(r, pt)
	}
	return r, nil
}

func toPolygon(c [][][]float64) (orb.Polygon, error) {
	if len(c) == 0 {
		return nil, errors.New("a polygon needs at least one ring")
	}
	p := make(orb.Polygon, 0, len(c))
	for _, rc := range c {
		r, err := toRing(rc)
		if err != nil {
			return nil, err
		}
		p = append(p, r)
	}
	return p, nil
}

func toMultiPolygon(c [][][][]float64) (orb.MultiPolygon, error) {
	if len(c) == 0 {
		return nil, errors.New("a multipolygon needs at least one polygon")
	}
	mp := make(orb.MultiPolygon, 0, len(c))
	for _, pc := range c {
		p, err := toPolygon(pc)
		if err != nil {
			return nil, err
		}
		mp = append(mp, p)
	}
	return mp, nil
}

// geoFeature is one Feature of a FeatureCollection file.
type geoFeature struct {
	N     int // 1-based position in the file
	Line  int
	Props map[string]json.RawMessage
	ID    json.RawMessage // the Feature's own id, a fallback for properties.id
	Type  string          // geometry type
	Coord json.RawMessage // geometry coordinates
}

// readFeatures splits a GeoJSON FeatureCollection into its features, each
// with the line it starts on. Errors name the file and line.
func readFeatures(path string, data []byte) ([]geoFeature, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lc := lineCounter{data: data, line: 1}
	dec := json.NewDecoder(bytes.NewReader(data))
	fail := func(err error) error {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return errAt(path, lc.lineAt(int(se.Offset)), "%w", err)
		case errors.As(err, &te):
			return errAt(path, lc.lineAt(int(te.Offset)), "%w", err)
		case errors.Is(err, errUnexpected):
			return errAt(path, lc.lineAt(int(dec.InputOffset())), "%w", err)
		}
		return errAt(path, 0, "%w", err)
	}
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fail(fmt.Errorf("%w: want a GeoJSON FeatureCollection object", err))
	}
	var typ string
	var feats []geoFeature
	sawFeatures := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail(err)
		}
		switch tok {
		case "type":
			if err := dec.Decode(&typ); err != nil {
				return nil, fail(err)
			}
		case "features":
			sawFeatures = true
			if err := expectDelim(dec, '['); err != nil {
				return nil, fail(fmt.Errorf("%w: features must be an array", err))
			}
			for dec.More() {
				line := lc.lineAt(skipSep(data, int(dec.InputOffset())))
				var f struct {
					Type       string                     `json:"type"`
					ID         json.RawMessage            `json:"id"`
					Properties map[string]json.RawMessage `json:"properties"`
					Geometry   *struct {
						Type        string          `json:"type"`
						Coordinates json.RawMessage `json:"coordinates"`
					} `json:"geometry"`
				}
				if err := dec.Decode(&f); err != nil {
					return nil, fail(err)
				}
				g := geoFeature{N: len(feats) + 1, Line: line, Props: f.Properties, ID: f.ID}
				if f.Type != "Feature" {
					return nil, errAt(path, line, "feature %d: type %q: want Feature", g.N, f.Type)
				}
				if f.Geometry != nil {
					g.Type, g.Coord = f.Geometry.Type, f.Geometry.Coordinates
				}
				feats = append(feats, g)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fail(err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fail(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fail(err)
	}
	if typ != "FeatureCollection" || !sawFeatures {
		return nil, errAt(path, 1, "type %q: want a FeatureCollection with features", typ)
	}
	return feats, nil
}

var errUnexpected = errors.New("unexpected JSON")

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("%w %v", errUnexpected, tok)
	}
	return nil
}

// skipSep returns the offset of the first byte at or after off that is not
// white space or a comma: where the next array element starts.
func skipSep(data []byte, off int) int {
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
		default:
			return off
		}
	}
	return off
}

// lineCounter turns byte offsets into line numbers, counting forward from
// the last offset asked for (offsets are mostly asked in order).
type lineCounter struct {
	data []byte
	off  int
	line int
}

func (c *lineCounter) lineAt(off int) int {
	off = max(0, min(off, len(c.data)))
	if off < c.off {
		c.off, c.line = 0, 1
	}
	c.line += bytes.Count(c.data[c.off:off], []byte("\n"))
	c.off = off
	return c.line
}

// prop returns a string or number property as text, "" if absent or null.
func (f *geoFeature) prop(key string) (string, error) {
	raw, ok := f.Props[key]
	if !ok && key == "id" {
		raw = f.ID
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return strings.TrimSpace(s), err
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
			return "", fmt.Errorf("property %s: %s is not a number", key, raw)
		}
		return string(raw), nil
	}
	return "", fmt.Errorf("property %s: %s: want a string or a number", key, raw)
}

// area decodes a Polygon or MultiPolygon geometry.
func (f *geoFeature) area() (orb.MultiPolygon, error) {
	switch f.Type {
	case "Polygon":
		var c [][][]float64
		if err := json.Unmarshal(f.Coord, &c); err != nil {
			return nil, fmt.Errorf("Polygon coordinates: %w", err)
		}
		p, err := toPolygon(c)
		if err != nil {
			return nil, fmt.Errorf("Polygon coordinates: %w", err)
		}
		return orb.MultiPolygon{p}, nil
	case "MultiPolygon":
		var c [][][][]float64
		if err := json.Unmarshal(f.Coord, &c); err != nil {
			return nil, fmt.Errorf("MultiPolygon coordinates: %w", err)
		}
		mp, err := toMultiPolygon(c)
		if err != nil {
			return nil, fmt.Errorf("MultiPolygon coordinates: %w", err)
		}
		return mp, nil
	case "":
		return nil, errors.New("no geometry: want a Polygon or MultiPolygon")
	}
	return nil, fmt.Errorf("geometry type %q: want Polygon or MultiPolygon", f.Type)
}

// line decodes a LineString geometry.
func (f *geoFeature) line() (orb.LineString, error) {
	if f.Type != "LineString" {
		if f.Type == "" {
			return nil, errors.New("no geometry: want a LineString")
		}
		return nil, fmt.Errorf("geometry type %q: want LineString", f.Type)
	}
	var c [][]float64
	if err := json.Unmarshal(f.Coord, &c); err != nil {
		return nil, fmt.Errorf("LineString coordinates: %w", err)
	}
	r, err := toRing(c)
	if err != nil {
		return nil, fmt.Errorf("LineString coordinates: %w", err)
	}
	return orb.LineString(r), nil
}

// featureSubject names a feature in messages: by id if it has one.
func featureSubject(kind, id string, n int) string {
	if id != "" {
		return kind + " " + id
	}
	return fmt.Sprintf("feature %d", n)
}

// loadSites reads the sites file's features. A feature whose geometry
// cannot be read is kept without an area (so references to it resolve)
// and marked, so Validate does not report it twice. crs is the file's.
func (c *City) loadSites(path, crs string, feats []geoFeature) []error {
	var errs []error
	for i := range feats {
		f := &feats[i]
		s := Site{Line: f.Line}
		var perr []error
		for _, p := range []struct {
			key string
			dst *string
		}{{"id", &s.ID}, {"name", &s.Name}, {"district", &s.District}} {
			v, err := f.prop(p.key)
			if err != nil {
				perr = append(perr, err)
			}
			*p.dst = v
		}
		kind, err := f.prop("kind")
		if err != nil {
			perr = append(perr, err)
		}
		s.Kind = SiteKind(kind)
		area, err := f.area()
		if err != nil {
			perr = append(perr, err)
			c.skipGeometry(geomSite, len(c.Sites))
		} else if crs == crsGCJ02 {
			gcjToWGSMulti(area)
		}
		s.Area = area
		if raw, ok := f.Props["wash_area"]; ok && string(raw) != "null" {
			wash, err := washArea(raw)
			switch {
			case err != nil:
				perr = append(perr, fmt.Errorf("property wash_area: %w", err))
			default:
				if crs == crsGCJ02 {
					gcjToWGSMulti(wash)
				}
				if area != nil && !within(wash, area) {
					perr = append(perr, errors.New("property wash_area: not inside the site"))
				}
				s.WashArea = wash
			}
		}
		for _, e := range perr {
			errs = append(errs, errAt(path, f.Line, "%s: %w", featureSubject("site", s.ID, f.N), e))
		}
		c.Sites = append(c.Sites, s)
	}
	return errs
}

// washArea decodes a wash_area property: a GeoJSON Polygon or
// MultiPolygon geometry object.
func washArea(raw json.RawMessage) (orb.MultiPolygon, error) {
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("want a GeoJSON Polygon or MultiPolygon geometry: %w", err)
	}
	f := geoFeature{Type: g.Type, Coord: g.Coordinates}
	return f.area()
}

// within reports whether every vertex of inner lies in outer.
func within(inner, outer orb.MultiPolygon) bool {
	for _, p := range inner {
		for _, r := range p {
			for _, pt := range r {
				if !planar.MultiPolygonContains(outer, pt) {
					return false
				}
			}
		}
	}
	return true
}

// loadRoutes reads the routes file's features, like loadSites.
func (c *City) loadRoutes(path, crs string, feats []geoFeature) []error {
	var errs []error
	for i := range feats {
		f := &feats[i]
		r := Route{Line: f.Line}
		var perr []error
		var err error
		if r.ID, err = f.prop("id"); err != nil {
			perr = append(perr, err)
		}
		if r.Name, err = f.prop("name"); err != nil {
			perr = append(perr, err)
		}
		if r.Path, err = f.line(); err != nil {
			perr = append(perr, err)
			c.skipGeometry(geomRoute, len(c.Routes))
		} else if crs == crsGCJ02 {
			gcjToWGSLine(r.Path)
		}
		for _, e := range perr {
			errs = append(errs, errAt(path, f.Line, "%s: %w", featureSubject("route", r.ID, f.N), e))
		}
		c.Routes = append(c.Routes, r)
	}
	return errs
}

// loadDistricts reads the districts file's features, like loadSites.
func (c *City) loadDistricts(path, crs string, feats []geoFeature) []error {
	var errs []error
	for i := range feats {
		f := &feats[i]
		d := District{line: f.Line}
		var perr []error
		var err error
		if d.Name, err = f.prop("name"); err != nil {
			perr = append(perr, err)
		}
		if d.Adcode, err = f.prop("adcode"); err != nil {
			perr = append(perr, err)
		}
		if d.Area, err = f.area(); err != nil {
			perr = append(perr, err)
			c.skipGeometry(geomDistrict, len(c.Districts))
		} else if crs == crsGCJ02 {
			gcjToWGSMulti(d.Area)
		}
		for _, e := range perr {
			errs = append(errs, errAt(path, f.Line, "%s: %w", featureSubject("district", d.Name, f.N), e))
		}
		c.Districts = append(c.Districts, d)
	}
	return errs
}

// checkArea checks a site's or zone's area: polygons with closed rings of
// at least four positions, in range, simple, with an area, and no more
// than maxSiteAcrossM across. bounded false skips the size bound and the
// simplicity check (district outlines are large and drawn by others).
func checkArea(mp orb.MultiPolygon, bounded bool) error {
	if len(mp) == 0 {
		return errors.New("area is empty: want a Polygon or MultiPolygon")
	}
	for pi, p := range mp {
		where := func(ri int) string {
			w := "outer ring"
			if ri > 0 {
				w = fmt.Sprintf("hole %d", ri)
			}
			if len(mp) > 1 {
				w = fmt.Sprintf("polygon %d %s", pi+1, w)
			}
			return w
		}
		if len(p) == 0 {
			return fmt.Errorf("polygon %d has no rings", pi+1)
		}
		for ri, r := range p {
			if len(r) < 4 {
				return fmt.Errorf("%s has %d positions: a ring needs at least 4, the last repeating the first", where(ri), len(r))
			}
			if r[0] != r[len(r)-1] {
				return fmt.Errorf("%s is not closed: its last position %v must repeat its first %v", where(ri), r[len(r)-1], r[0])
			}
			for _, pt := range r {
				if err := checkLonLat(pt[0], pt[1]); err != nil {
					return fmt.Errorf("%s: %w", where(ri), err)
				}
			}
			if bounded {
				if k, ok := selfIntersection(r); ok {
					return fmt.Errorf("%s intersects itself near position %d %v", where(ri), k+1, r[k])
				}
			}
			if math.Abs(geo.SignedArea(r)) < 1 {
				return fmt.Errorf("%s has no area", where(ri))
			}
		}
	}
	if bounded {
		b := mp.Bound()
		if d := geo.Distance(b.Min, b.Max); d > maxSiteAcrossM {
			return fmt.Errorf("area is %.0f km across, at most %d km: are lon and lat swapped, or a decimal point lost?",
				d/1000, maxSiteAcrossM/1000)
		}
	}
	return nil
}

// checkLonLat checks that a position is on the globe, and says so when it
// looks swapped.
func checkLonLat(lon, lat float64) error {
	if math.IsNaN(lon) || math.IsNaN(lat) || lon < -180 || lon > 180 || lat < -90 || lat > 90 {
		hint := ""
		if lat >= -180 && lat <= 180 && lon >= -90 && lon <= 90 {
			hint = ": are lon and lat swapped?"
		}
		return fmt.Errorf("position [%g, %g] ([lon, lat]) is off the globe%s", lon, lat, hint)
	}
	return nil
}

// selfIntersection reports whether a closed ring crosses or touches itself
// anywhere but at the shared ends of consecutive segments, and near which
// position. It is O(n²), which rings of sites and zones afford.
func selfIntersection(r orb.Ring) (int, bool) {
	// Drop repeated consecutive positions: they make zero-length segments.
	pts := make([]orb.Point, 0, len(r))
	idx := make([]int, 0, len(r))
	for i, p := range r {
		if len(pts) == 0 || p != pts[len(pts)-1] {
			pts, idx = append(pts, p), append(idx, i)
		}
	}
	n := len(pts) - 1 // segments
	if n < 3 {
		return 0, false // degenerate; the area check reports it
	}
	for i := range n {
		// A spike: the ring turns straight back on itself.
		a, b, c := pts[i], pts[i+1], pts[(i+2)%len(pts)]
		if i+2 == len(pts) {
			c = pts[1]
		}
		if orient(a, b, c) == 0 && (a[0]-b[0])*(c[0]-b[0])+(a[1]-b[1])*(c[1]-b[1]) > 0 {
			return idx[i+1], true
		}
		for j := i + 2; j < n; j++ {
			if i == 0 && j == n-1 {
				continue // adjacent through the closing position
			}
			if segmentsIntersect(pts[i], pts[i+1], pts[j], pts[j+1]) {
				return idx[j], true
			}
		}
	}
	return 0, false
}

func orient(a, b, c orb.Point) float64 {
	return (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
}

func onSegment(a, b, p orb.Point) bool {
	return math.Min(a[0], b[0]) <= p[0] && p[0] <= math.Max(a[0], b[0]) &&
		math.Min(a[1], b[1]) <= p[1] && p[1] <= math.Max(a[1], b[1])
}

func segmentsIntersect(a, b, c, d orb.Point) bool {
	d1, d2 := orient(c, d, a), orient(c, d, b)
	d3, d4 := orient(a, b, c), orient(a, b, d)
	if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
		return true
	}
	return (d1 == 0 && onSegment(c, d, a)) || (d2 == 0 && onSegment(c, d, b)) ||
		(d3 == 0 && onSegment(a, b, c)) || (d4 == 0 && onSegment(a, b, d))
}

// DistrictAt returns the name of the district that contains the WGS-84
// position, or "" if none does or the city has no districts. It scans
// every district (with a bounding-box test first): it is meant for naming
// an alert's place, not for every fix.
func (c *City) DistrictAt(lon, lat float64) string {
	p := orb.Point{lon, lat}
	for i := range c.Districts {
		d := &c.Districts[i]
		if i < len(c.index.districtBounds) && !c.index.districtBounds[i].Contains(p) {
			continue
		}
		if planar.MultiPolygonContains(d.Area, p) {
			return d.Name
		}
	}
	return ""
}
