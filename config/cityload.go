package config

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // permit windows are read in the city's zone, also where the machine has no zoneinfo
	"unicode/utf8"

	"github.com/paulmach/orb"
	"gopkg.in/yaml.v3"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

const (
	crsWGS84          = "wgs84"
	crsGCJ02          = "gcj02"
	defaultTimeZone   = "Asia/Shanghai"
	defaultRegionCode = "370700"
	minCorridorM      = 5
	maxCorridorM      = 1000
	daySeconds        = 24 * 3600
)

// geomKind names the GeoJSON files a city reads.
type geomKind uint8

const (
	geomSite geomKind = iota
	geomRoute
	geomDistrict
)

// geomRef is one feature of one GeoJSON file, by its position.
type geomRef struct {
	kind geomKind
	i    int
}

// skipGeometry marks a feature whose geometry could not be read (the load
// reported it), so Validate does not report it again.
func (c *City) skipGeometry(k geomKind, i int) {
	if c.badGeom == nil {
		c.badGeom = map[geomRef]bool{}
	}
	c.badGeom[geomRef{k, i}] = true
}

// LoadCity reads a city file (strict YAML: unknown keys are errors) over
// the default rules, reads the GeoJSON files it names (relative to it; the
// GeoFile paths are rewritten so), converting GCJ-02 ones to WGS-84, and
// validates the whole against reg (nil skips the device cross-checks). It
// reports every problem at once, each naming its file and line, ordered
// by file and line; values that cannot be decoded at all (a malformed
// window, date, duration or geometry, an unknown key) are reported
// together before anything is validated.
func LoadCity(path string, reg *Registry) (*City, error) {
	stamp, data, err := readStamped(path)
	if err != nil {
		return nil, fmt.Errorf("read city: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &City{Rules: DefaultRules(), path: path, doc: &root, files: []fileStamp{stamp}}
	if err := decodeStrict(path, data, c); err != nil {
		return nil, yamlErrors(path, err)
	}
	for i := range c.Zones {
		c.Zones[i].Line = c.line("zones", i)
	}
	var errs []error
	dir := filepath.Dir(path)
	for _, g := range []struct {
		key  string
		f    *GeoFile
		kind geomKind
		load func(file, crs string, feats []geoFeature) []error
	}{
		{"sites", &c.SitesFile, geomSite, c.loadSites},
		{"routes", &c.RoutesFile, geomRoute, c.loadRoutes},
		{"districts", &c.DistrictsFile, geomDistrict, c.loadDistricts},
	} {
		failed := func(line int, format string, args ...any) {
			errs = append(errs, errAt(path, line, "%s: %s", g.key, fmt.Sprintf(format, args...)))
			c.markNoFile(g.kind)
		}
		if g.f.File == "" {
			if g.f.CRS != "" {
				failed(c.line(g.key), "crs without file")
			}
			continue
		}
		if !filepath.IsAbs(g.f.File) {
			g.f.File = filepath.Join(dir, g.f.File)
		}
		crs := g.f.CRS
		if crs == "" {
			crs = crsWGS84
		}
		if crs != crsWGS84 && crs != crsGCJ02 {
			failed(c.line(g.key, "crs"), "crs %q: want wgs84 or gcj02", g.f.CRS)
			continue
		}
		stamp, data, err := readStamped(g.f.File)
		if err != nil {
			failed(c.line(g.key, "file"), "%v", err)
			continue
		}
		c.files = append(c.files, stamp)
		feats, err := readFeatures(g.f.File, data)
		if err != nil {
			errs = append(errs, err)
			c.markNoFile(g.kind)
			continue
		}
		errs = append(errs, g.load(g.f.File, crs, feats)...)
	}
	errs = appendJoined(errs, c.Validate(reg))
	c.doc = nil // the node tree of a large city is large; later Validate calls name the file alone
	if len(errs) > 0 {
		c.sortErrors(errs)
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// markNoFile records that a GeoJSON file could not be read, so references
// to its features are not reported one by one.
func (c *City) markNoFile(k geomKind) {
	if c.noFile == nil {
		c.noFile = map[geomKind]bool{}
	}
	c.noFile[k] = true
}

// posError is a problem at a line of a file; the file is "" for a city
// built in code, the line 0 when unknown.
type posError struct {
	file string
	line int
	err  error
}

func errAt(file string, line int, format string, args ...any) error {
	return &posError{file: file, line: line, err: fmt.Errorf(format, args...)}
}

func (e *posError) Error() string {
	switch {
	case e.file != "" && e.line > 0:
		return fmt.Sprintf("%s:%d: %v", e.file, e.line, e.err)
	case e.file != "":
		return fmt.Sprintf("%s: %v", e.file, e.err)
	}
	return e.err.Error()
}

func (e *posError) Unwrap() error { return e.err }

// sortErrors orders problems by file (the city file, then its GeoJSON
// files) and line, so they read like the files.
func (c *City) sortErrors(errs []error) {
	rank := func(err error) (int, int) {
		var pe *posError
		if !errors.As(err, &pe) {
			return -1, 0
		}
		for i, f := range []string{c.path, c.SitesFile.File, c.RoutesFile.File, c.DistrictsFile.File} {
			if pe.file == f {
				return i, pe.line
			}
		}
		return 4, pe.line
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		fa, la := rank(a)
		fb, lb := rank(b)
		return cmp.Or(cmp.Compare(fa, fb), cmp.Compare(la, lb))
	})
}

// appendJoined appends err, or the errors it joins.
func appendJoined(errs []error, err error) []error {
	if err == nil {
		return errs
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return append(errs, j.Unwrap()...)
	}
	return append(errs, err)
}

// yamlErrors turns yaml.v3's "line N: reason" type errors into one error
// per problem, "path:N: reason", like every other city error.
func yamlErrors(path string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	errs := make([]error, 0, len(te.Errors))
	for _, e := range te.Errors {
		if rest, ok := strings.CutPrefix(e, "line "); ok {
			if n, reason, ok := strings.Cut(rest, ": "); ok {
				if line, err := strconv.Atoi(n); err == nil {
					errs = append(errs, errAt(path, line, "%s", reason))
					continue
				}
			}
		}
		errs = append(errs, errAt(path, 0, "%s", e))
	}
	return errors.Join(errs...)
}

// line returns the line of the node at path in the city file (map keys
// and sequence indexes), or of the deepest part of it that exists; 0 for a
// city built in code.
func (c *City) line(path ...any) int {
	if c.doc == nil || len(c.doc.Content) == 0 {
		return 0
	}
	n, line := c.doc.Content[0], 0
	for _, p := range path {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						line, next = n.Content[i].Line, n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// validator collects a city's problems.
type validator struct {
	c    *City
	errs []error
}

// at records a problem at file:line; either may be unknown (a city built
// in code has neither).
func (v *validator) at(file string, line int, format string, args ...any) {
	v.errs = append(v.errs, errAt(file, line, format, args...))
}

// atKey records a problem at a node of the city file (see City.line).
func (v *validator) atKey(path []any, format string, args ...any) {
	v.at(v.c.path, v.c.line(path...), format, args...)
}

// Validate fills what is left out with defaults, converts the zones and
// gauges of a gcj02 city to WGS-84, checks the whole city and builds its
// lookups. It serves cities read by LoadCity and cities built in code
// (which set Sites, Routes and Districts themselves, in WGS-84). It reports
// every problem at once; a city that fails must not be used. reg, if not
// nil, is checked to register every truck and gauge device with its class.
// Validate may be called again: it converts coordinates only once.
func (c *City) Validate(reg *Registry) error {
	v := &validator{c: c}
	c.defaults(v)
	if c.CRS == crsGCJ02 && !c.converted {
		for i := range c.Zones {
			gcjToWGSMulti(c.Zones[i].Area.Area)
		}
		for i := range c.Gauges {
			g := &c.Gauges[i]
			if g.Lon != 0 || g.Lat != 0 {
				g.Lon, g.Lat = GCJ02ToWGS84(g.Lon, g.Lat)
			}
		}
		c.converted = true
	}
	idx := cityIndex{
		truckByDevice: map[string]*Truck{}, truckByPlate: map[string]*Truck{}, company: map[string]*Company{},
		site: map[string]*Site{}, route: map[string]*Route{}, permits: map[string][]*Permit{}, gauge: map[string]*Gauge{},
	}
	v.rules()
	v.companies(&idx)
	v.trucks(&idx, reg)
	v.sites(&idx)
	v.routes(&idx)
	v.districts(&idx)
	v.permits(&idx)
	v.zones()
	v.gauges(&idx, reg)
	c.index = idx
	c.sortErrors(v.errs)
	return errors.Join(v.errs...)
}

// defaults fills the city-wide settings and the rules, and loads the time
// zone.
func (c *City) defaults(v *validator) {
	if c.RegionCode == "" {
		c.RegionCode = defaultRegionCode
	}
	if c.CRS == "" {
		c.CRS = crsWGS84
	}
	if c.TimeZone == "" && c.Location == nil {
		c.TimeZone = defaultTimeZone
	}
	if c.TimeZone != "" {
		loc, err := time.LoadLocation(c.TimeZone)
		if err != nil {
			v.atKey([]any{"time_zone"}, "time_zone %q: %v", c.TimeZone, err)
		} else {
			c.Location = loc
		}
	}
	if !regionCodePattern.MatchString(c.RegionCode) {
		v.atKey([]any{"region_code"}, "region_code %q: want a 6-digit GB/T 2260 code such as 370700", c.RegionCode)
	}
	if c.CRS != crsWGS84 && c.CRS != crsGCJ02 {
		v.atKey([]any{"crs"}, "crs %q: want wgs84 or gcj02", c.CRS)
	}
	fillZero(reflect.ValueOf(&c.Rules).Elem(), reflect.ValueOf(DefaultRules()))
	for i := range c.Zones {
		if c.Zones[i].Severity == "" {
			c.Zones[i].Severity = SeverityWarning
		}
	}
	for i := range c.Permits {
		if c.Permits[i].CorridorM == 0 {
			c.Permits[i].CorridorM = c.Rules.OffRoute.CorridorM
		}
	}
}

var (
	regionCodePattern = regexp.MustCompile(`^[1-9][0-9]{5}$`)
	phonePattern      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// fillZero sets every zero field of the struct v to the same field of def.
func fillZero(v, def reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			fillZero(f, def.Field(i))
		} else if f.IsZero() {
			f.Set(def.Field(i))
		}
	}
}

func validSeverity(s string) bool {
	return severityRank(s) >= 0
}

// severityRank orders the severities, lowest first; -1 for an unknown one.
func severityRank(s string) int {
	switch s {
	case SeverityMinor:
		return 0
	case SeverityWarning:
		return 1
	case SeverityMajor:
		return 2
	case SeverityCritical:
		return 3
	}
	return -1
}

// rules checks the thresholds: every number and duration positive, every
// string a severity (the only strings RuleSettings holds), and the
// orderings between them.
func (v *validator) rules() {
	var walk func(rv reflect.Value, path []any)
	walk = func(rv reflect.Value, path []any) {
		t := rv.Type()
		for i := range rv.NumField() {
			f := rv.Field(i)
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			p := append(path[:len(path):len(path)], name)
			key := "rules"
			for _, k := range p[1:] {
				key += "." + k.(string)
			}
			switch f.Kind() {
			case reflect.Struct:
				walk(f, p)
			case reflect.String:
				if !validSeverity(f.String()) {
					v.atKey(p, "%s %q: want minor, warning, major or critical", key, f.String())
				}
			case reflect.Int, reflect.Int64:
				if f.Int() <= 0 {
					v.atKey(p, "%s %v: must be positive", key, f.Interface())
				}
			case reflect.Float64:
				if !(f.Float() > 0) || math.IsInf(f.Float(), 0) {
					v.atKey(p, "%s %g: must be positive", key, f.Float())
				}
			}
		}
	}
	r := &v.c.Rules
	walk(reflect.ValueOf(r).Elem(), []any{"rules"})
	if r.OffRoute.CorridorM < minCorridorM || r.OffRoute.CorridorM > maxCorridorM {
		v.atKey([]any{"rules", "off_route", "corridor_m"}, "rules.off_route.corridor_m %g: want %d to %d m",
			r.OffRoute.CorridorM, minCorridorM, maxCorridorM)
	}
	if r.IllegalDumping.LoadDropPct > 100 {
		v.atKey([]any{"rules", "illegal_dumping", "load_drop_pct"}, "rules.illegal_dumping.load_drop_pct %g: at most 100",
			r.IllegalDumping.LoadDropPct)
	}
	if w := r.Waterlogging; !(w.CloseCM > w.WarnCM && w.WarnCM > w.HysteresisCM && w.HysteresisCM >= 0) {
		v.atKey([]any{"rules", "waterlogging"}, "rules.waterlogging: want close_cm (%g) > warn_cm (%g) > hysteresis_cm (%g) ≥ 0",
			w.CloseCM, w.WarnCM, w.HysteresisCM)
	}
	levels := []struct {
		name string
		l    RainLevel
	}{{"blue", r.Rainstorm.Blue}, {"yellow", r.Rainstorm.Yellow}, {"orange", r.Rainstorm.Orange}, {"red", r.Rainstorm.Red}}
	for i := 1; i < len(levels); i++ {
		lo, hi := levels[i-1], levels[i]
		stricter := hi.l.MM >= lo.l.MM && hi.l.Window <= lo.l.Window && (hi.l.MM > lo.l.MM || hi.l.Window < lo.l.Window)
		if !stricter {
			v.atKey([]any{"rules", "rainstorm", hi.name},
				"rules.rainstorm.%s (%g mm in %v) must be stricter than %s (%g mm in %v): more rain, or as much in less time",
				hi.name, hi.l.MM, hi.l.Window, lo.name, lo.l.MM, lo.l.Window)
		}
		if severityRank(hi.l.Severity) < severityRank(lo.l.Severity) {
			v.atKey([]any{"rules", "rainstorm", hi.name, "severity"}, "rules.rainstorm.%s severity %s is below %s's %s",
				hi.name, hi.l.Severity, lo.name, lo.l.Severity)
		}
	}
}

// ids checks that an id is set and not taken; seen maps ids to the line
// they were first seen on.
func (v *validator) id(seen map[string]int, kind, id string, file string, line int) bool {
	if id == "" {
		v.at(file, line, "%s: id is required", kind)
		return false
	}
	if prev, dup := seen[id]; dup {
		if prev > 0 {
			v.at(file, line, "%s %s: duplicate id (first at line %d)", kind, id, prev)
		} else {
			v.at(file, line, "%s %s: duplicate id", kind, id)
		}
		return false
	}
	seen[id] = line
	return true
}

func (v *validator) companies(idx *cityIndex) {
	c := v.c
	seen := map[string]int{}
	for i := range c.Companies {
		co := &c.Companies[i]
		line := c.line("companies", i)
		if v.id(seen, "company", co.ID, c.path, line) {
			idx.company[co.ID] = co
		}
		for j, ct := range co.Contacts {
			if ct.Phone != "" && !phonePattern.MatchString(ct.Phone) {
				v.atKey([]any{"companies", i, "contacts", j, "phone"}, "company %s: contact %s: phone %q: want E.164, e.g. +8613800000000",
					co.ID, ct.Name, ct.Phone)
			}
		}
	}
}

func (v *validator) trucks(idx *cityIndex, reg *Registry) {
	c := v.c
	seen := map[string]int{}
	for i := range c.Trucks {
		t := &c.Trucks[i]
		line := c.line("trucks", i)
		t.Plate = NormalizePlate(t.Plate)
		if !validPlate(t.Plate) {
			v.at(c.path, line, "truck %q: plate: want a province character, a letter and 5 or 6 letters or digits, e.g. 鲁G·12345", t.Plate)
		} else if v.id(seen, "truck", t.Plate, c.path, line) {
			idx.truckByPlate[t.Plate] = t
		}
		if !(t.RatedLoadKg >= 0 && t.RatedLoadKg <= 100_000) {
			v.atKey([]any{"trucks", i, "rated_load_kg"}, "truck %s: rated_load_kg %g: want 0 (not judged) to 100000", t.Plate, t.RatedLoadKg)
		}
		if t.Company == "" {
			v.at(c.path, line, "truck %s: company is required", t.Plate)
		} else if idx.company[t.Company] == nil {
			v.atKey([]any{"trucks", i, "company"}, "truck %s: company %q is not among the companies", t.Plate, t.Company)
		}
		for j, d := range t.Devices {
			at := []any{"trucks", i, "devices", j}
			if d == "" {
				v.atKey(at, "truck %s: empty device id", t.Plate)
				continue
			}
			if prev := idx.truckByDevice[d]; prev != nil {
				v.atKey(at, "truck %s: device %s already belongs to truck %s", t.Plate, d, prev.Plate)
				continue
			}
			idx.truckByDevice[d] = t
			v.device(at, "truck "+t.Plate, d, telemetry.ClassTruck, reg)
		}
	}
}

// device checks that reg registers device d with class want.
func (v *validator) device(at []any, who, d string, want telemetry.Class, reg *Registry) {
	if reg == nil {
		return
	}
	class, ok := reg.Class(d)
	switch {
	case !ok:
		v.atKey(at, "%s: device %s is not in the registry %s", who, d, cmp.Or(reg.path, "(built in code)"))
	case class != want:
		v.atKey(at, "%s: device %s is registered as %s, want %s", who, d, class, want)
	}
}

func (v *validator) sites(idx *cityIndex) {
	c := v.c
	seen := map[string]int{}
	file := c.SitesFile.File
	for i := range c.Sites {
		s := &c.Sites[i]
		if v.id(seen, "site", s.ID, file, s.Line) {
			idx.site[s.ID] = s
		}
		if s.Kind != SiteConstruction && s.Kind != SiteDisposal {
			v.at(file, s.Line, "site %s: kind %q: want construction or disposal", s.ID, s.Kind)
		}
		if c.badGeom[geomRef{geomSite, i}] {
			continue
		}
		if err := checkArea(s.Area, true); err != nil {
			v.at(file, s.Line, "site %s: %v", s.ID, err)
		}
	}
}

func (v *validator) routes(idx *cityIndex) {
	c := v.c
	seen := map[string]int{}
	file := c.RoutesFile.File
	for i := range c.Routes {
		r := &c.Routes[i]
		if v.id(seen, "route", r.ID, file, r.Line) {
			idx.route[r.ID] = r
		}
		if c.badGeom[geomRef{geomRoute, i}] {
			continue
		}
		distinct := 0
		for k, p := range r.Path {
			if err := checkLonLat(p[0], p[1]); err != nil {
				v.at(file, r.Line, "route %s: %v", r.ID, err)
				distinct = -1
				break
			}
			if k == 0 || p != r.Path[k-1] {
				distinct++
			}
		}
		if distinct >= 0 && distinct < 2 {
			v.at(file, r.Line, "route %s: a LineString needs at least 2 distinct positions", r.ID)
		}
	}
}

func (v *validator) districts(idx *cityIndex) {
	c := v.c
	file := c.DistrictsFile.File
	idx.districtBounds = make([]orb.Bound, len(c.Districts))
	for i := range c.Districts {
		d := &c.Districts[i]
		if d.Name == "" {
			v.at(file, d.line, "district %d: name is required", i+1)
		}
		if c.badGeom[geomRef{geomDistrict, i}] {
			continue
		}
		if err := checkArea(d.Area, false); err != nil {
			v.at(file, d.line, "district %s: %v", d.Name, err)
			continue
		}
		idx.districtBounds[i] = d.Area.Bound()
	}
}

func (v *validator) permits(idx *cityIndex) {
	c := v.c
	seen := map[string]int{}
	for i := range c.Permits {
		p := &c.Permits[i]
		line := c.line("permits", i)
		v.id(seen, "permit", p.ID, c.path, line)
		bad := func(key any, format string, args ...any) {
			path := []any{"permits", i}
			if key != nil {
				path = append(path, key)
			}
			v.atKey(path, "permit %s: %s", p.ID, fmt.Sprintf(format, args...))
		}
		p.Truck = NormalizePlate(p.Truck)
		switch t := idx.truckByPlate[p.Truck]; {
		case p.Truck == "":
			bad(nil, "truck is required")
		case t == nil:
			bad("truck", "truck %s is not among the trucks", p.Truck)
		default:
			idx.permits[p.Truck] = append(idx.permits[p.Truck], p)
		}
		dates := true
		for _, d := range []struct {
			key  string
			date Date
		}{{"valid_from", p.ValidFrom}, {"valid_to", p.ValidTo}} {
			if d.date == (Date{}) {
				bad(nil, "%s is required", d.key)
				dates = false
			} else if !d.date.valid() {
				bad(d.key, "%s %s is not a date", d.key, d.date)
				dates = false
			}
		}
		if dates && p.ValidFrom.key() > p.ValidTo.key() {
			bad("valid_to", "valid_to %s is before valid_from %s", p.ValidTo, p.ValidFrom)
		}
		if len(p.Windows) == 0 {
			bad(nil, "windows: at least one daily window is required, e.g. 00:00-24:00")
		}
		for j, w := range p.Windows {
			if err := w.check(); err != nil {
				v.atKey([]any{"permits", i, "windows", j}, "permit %s: window %d: %v", p.ID, j+1, err)
			}
		}
		for _, ref := range []struct {
			key  string
			ids  []string
			kind SiteKind
		}{{"origins", p.Origins, SiteConstruction}, {"disposal", p.Disposal, SiteDisposal}} {
			for j, id := range ref.ids {
				s := idx.site[id]
				switch {
				case s == nil && c.noFile[geomSite]:
				case s == nil:
					v.atKey([]any{"permits", i, ref.key, j}, "permit %s: %s: no site %q", p.ID, ref.key, id)
				case s.Kind != ref.kind:
					v.atKey([]any{"permits", i, ref.key, j}, "permit %s: %s: site %s is a %s site, want %s", p.ID, ref.key, id, s.Kind, ref.kind)
				}
			}
		}
		for j, id := range p.Routes {
			if idx.route[id] == nil && !c.noFile[geomRoute] {
				v.atKey([]any{"permits", i, "routes", j}, "permit %s: routes: no route %q", p.ID, id)
			}
		}
		// A permit that took a bad rules.off_route.corridor_m is not
		// reported again.
		if !(p.CorridorM >= minCorridorM && p.CorridorM <= maxCorridorM) && p.CorridorM != c.Rules.OffRoute.CorridorM {
			bad("corridor_m", "corridor_m %g: want %d to %d m", p.CorridorM, minCorridorM, maxCorridorM)
		}
	}
}

func (v *validator) zones() {
	c := v.c
	seen := map[string]int{}
	for i := range c.Zones {
		z := &c.Zones[i]
		line := z.Line
		if line == 0 {
			line = c.line("zones", i)
		}
		v.id(seen, "zone", z.ID, c.path, line)
		bad := func(path []any, format string, args ...any) {
			v.atKey(append([]any{"zones", i}, path...), "zone %s: %s", z.ID, fmt.Sprintf(format, args...))
		}
		if !validSeverity(z.Severity) {
			bad([]any{"severity"}, "severity %q: want minor, warning, major or critical", z.Severity)
		}
		if err := checkArea(z.Area.Area, true); err != nil {
			bad([]any{"area"}, "area: %v", err)
		}
		for j, w := range z.Windows {
			if err := w.check(); err != nil {
				bad([]any{"windows", j}, "window %d: %v", j+1, err)
			}
		}
		cd := &z.Condition
		if !cd.AnyTruck && cd.MaxSpeedKmh == 0 && cd.MinSpeedKmh == 0 && len(cd.Cover) == 0 && len(cd.Body) == 0 && cd.Loaded == nil {
			bad([]any{"condition"}, "condition: set at least one of any_truck, max_speed_kmh, min_speed_kmh, cover, body, loaded")
		}
		if !(cd.MaxSpeedKmh >= 0) || !(cd.MinSpeedKmh >= 0) {
			bad([]any{"condition"}, "condition: speeds must not be negative")
		}
		for j, s := range cd.Cover {
			if _, ok := telemetry.ParseCover(s); !ok {
				bad([]any{"condition", "cover", j}, "condition: cover %q: want open, closed or fault", s)
			}
		}
		for j, s := range cd.Body {
			if _, ok := telemetry.ParseBody(s); !ok {
				bad([]any{"condition", "body", j}, "condition: body %q: want raised or down", s)
			}
		}
	}
}

func (v *validator) gauges(idx *cityIndex, reg *Registry) {
	c := v.c
	wr := c.Rules.Waterlogging
	for i := range c.Gauges {
		g := &c.Gauges[i]
		line := c.line("gauges", i)
		bad := func(key any, format string, args ...any) {
			path := []any{"gauges", i}
			if key != nil {
				path = append(path, key)
			}
			v.atKey(path, "gauge %s: %s", g.Device, fmt.Sprintf(format, args...))
		}
		switch {
		case g.Device == "":
			v.at(c.path, line, "gauge %q: device is required", g.Name)
		case idx.gauge[g.Device] != nil:
			bad("device", "device listed twice")
		case idx.truckByDevice[g.Device] != nil:
			bad("device", "device already belongs to truck %s", idx.truckByDevice[g.Device].Plate)
		default:
			idx.gauge[g.Device] = g
			v.device([]any{"gauges", i, "device"}, "gauge "+g.Device, g.Device, telemetry.ClassGauge, reg)
		}
		if g.Kind != GaugeRain && g.Kind != GaugeDepth {
			bad("kind", "kind %q: want rain or depth", g.Kind)
		}
		if g.Lat == 0 && g.Lon == 0 {
			bad(nil, "lat and lon are required")
		} else if err := checkLonLat(g.Lon, g.Lat); err != nil {
			bad("lat", "%v", err)
		}
		if !(g.WarnCM >= 0) || !(g.CloseCM >= 0) {
			bad("warn_cm", "warn_cm and close_cm must not be negative")
			continue
		}
		if g.Kind == GaugeRain && (g.WarnCM != 0 || g.CloseCM != 0) {
			bad("warn_cm", "warn_cm and close_cm are for depth points, not rain gauges")
			continue
		}
		warn, closeCM := wr.WarnCM, wr.CloseCM
		if g.WarnCM > 0 {
			warn = g.WarnCM
		}
		if g.CloseCM > 0 {
			closeCM = g.CloseCM
		}
		if (g.WarnCM > 0 || g.CloseCM > 0) && !(closeCM > warn && warn > wr.HysteresisCM) {
			bad("warn_cm", "want close_cm (%g) > warn_cm (%g) > rules.waterlogging.hysteresis_cm (%g)", closeCM, warn, wr.HysteresisCM)
		}
	}
}

// plateProvinces are the province abbreviations that open a Chinese plate.
const plateProvinces = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"

var platePattern = regexp.MustCompile(`^[` + plateProvinces + `][A-Z]·[A-Z0-9]{5,6}$`)

// NormalizePlate returns a licence plate in its canonical form, "鲁G·12345":
// surrounding space trimmed, letters upper-cased and the separator after
// the issuing office's letter, written '·', '.', ' ' or not at all, made
// '·'. A string that does not start like a plate is returned trimmed.
func NormalizePlate(s string) string {
	s = strings.TrimSpace(s)
	p, size := utf8.DecodeRuneInString(s)
	if size == 0 || !strings.ContainsRune(plateProvinces, p) || len(s) < size+2 {
		return s
	}
	letter := s[size]
	if 'a' <= letter && letter <= 'z' {
		letter -= 'a' - 'A'
	}
	if letter < 'A' || letter > 'Z' {
		return s
	}
	rest := s[size+1:]
	for _, sep := range []string{"·", ".", " "} {
		if r, ok := strings.CutPrefix(rest, sep); ok {
			rest = r
			break
		}
	}
	return s[:size] + string(rune(letter)) + "·" + strings.ToUpper(rest)
}

// validPlate reports whether a normalised plate is well formed.
func validPlate(s string) bool { return platePattern.MatchString(s) }

// UnmarshalText parses "2006-01-02".
func (d *Date) UnmarshalText(text []byte) error {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("date %q: want YYYY-MM-DD", text)
	}
	*d = Date{t.Year(), int(t.Month()), t.Day()}
	return nil
}

// UnmarshalYAML parses a date written "2006-01-02" (quoted or not).
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a date, YYYY-MM-DD", n.Line)}}
	}
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	return nil
}

// String returns the date as "2006-01-02".
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// key orders dates as integers.
func (d Date) key() int { return d.Year*10000 + d.Month*100 + d.Day }

// valid reports whether d is a calendar date.
func (d Date) valid() bool {
	t := time.Date(d.Year, time.Month(d.Month), d.Day, 12, 0, 0, 0, time.UTC)
	return d.Year > 0 && t.Year() == d.Year && int(t.Month()) == d.Month && t.Day() == d.Day
}

// UnmarshalText parses "HH:MM-HH:MM" (seconds, "HH:MM:SS", are allowed
// too). The end may be 24:00. A window whose end equals its start is empty
// and refused, except "00:00-24:00", the whole day.
func (w *Window) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return fmt.Errorf("window %q: want HH:MM-HH:MM", s)
	}
	start, err := parseClock(strings.TrimSpace(a), false)
	if err != nil {
		return fmt.Errorf("window %q: start: %w", s, err)
	}
	end, err := parseClock(strings.TrimSpace(b), true)
	if err != nil {
		return fmt.Errorf("window %q: end: %w", s, err)
	}
	nw := Window{start, end}
	if err := nw.check(); err != nil {
		return fmt.Errorf("window %q: %w", s, err)
	}
	*w = nw
	return nil
}

// UnmarshalYAML parses a window written "HH:MM-HH:MM".
func (w *Window) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a window, HH:MM-HH:MM", n.Line)}}
	}
	if err := w.UnmarshalText([]byte(n.Value)); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	return nil
}

// parseClock parses "HH:MM" or "HH:MM:SS" into seconds after midnight;
// "24:00" only as an end.
func parseClock(s string, end bool) (int, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) == 0 || len(p) > 2 || n < 0 {
			return 0, fmt.Errorf("%q: want HH:MM", s)
		}
		v[i] = n
	}
	if v[1] > 59 || v[2] > 59 {
		return 0, fmt.Errorf("%q: minutes and seconds run to 59", s)
	}
	sec := v[0]*3600 + v[1]*60 + v[2]
	if v[0] > 24 || (v[0] == 24 && (!end || sec != daySeconds)) {
		return 0, fmt.Errorf("%q: hours run to 23 (24:00 only as an end)", s)
	}
	return sec, nil
}

// check reports a window out of range or empty.
func (w Window) check() error {
	switch {
	case w.Start < 0 || w.Start >= daySeconds:
		return fmt.Errorf("start %d s is outside the day", w.Start)
	case w.End < 0 || w.End > daySeconds:
		return fmt.Errorf("end %d s is outside the day", w.End)
	case w.Start == w.End:
		return fmt.Errorf("empty window %s: its end equals its start (00:00-24:00 is the whole day)", w)
	}
	return nil
}

// String returns the window as "HH:MM-HH:MM".
func (w Window) String() string { return clockString(w.Start) + "-" + clockString(w.End) }

func clockString(s int) string {
	if s%60 != 0 {
		return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/3600, s/60%60)
}

// Contains reports whether the window holds the time of day secOfDay
// (seconds after midnight), on either side of midnight for a window that
// crosses it.
func (w Window) Contains(secOfDay int) bool {
	if w.Start < w.End {
		return w.Start <= secOfDay && secOfDay < w.End
	}
	return secOfDay >= w.Start || secOfDay < w.End
}

// crosses reports whether the window runs past midnight.
func (w Window) crosses() bool { return w.End <= w.Start }

// wallClock returns t's date and time of day in loc (t's own location if
// loc is nil).
func wallClock(t time.Time, loc *time.Location) (day Date, sec int) {
	if loc != nil {
		t = t.In(loc)
	}
	y, m, d := t.Date()
	h, mi, s := t.Clock()
	return Date{y, int(m), d}, h*3600 + mi*60 + s
}

// prev returns the day before d.
func (d Date) prev() Date {
	if d.Day > 1 {
		return Date{d.Year, d.Month, d.Day - 1}
	}
	y, m, dd := time.Date(d.Year, time.Month(d.Month), 0, 12, 0, 0, 0, time.UTC).Date()
	return Date{y, int(m), dd}
}

// Check reads the permit at t in the city's zone loc (t's own if nil).
// open reports whether one of its windows is open at t and opened on a day
// from ValidFrom to ValidTo; a window that crosses midnight belongs to the
// day it opens. valid reports whether t falls in the permit's validity:
// on a day from ValidFrom to ValidTo, or in a window occurrence that opened
// on ValidTo and runs past midnight (01:00 the day after ValidTo is valid
// under a 20:00-06:00 window).
func (p *Permit) Check(t time.Time, loc *time.Location) (valid, open bool) {
	day, sec := wallClock(t, loc)
	from, to := p.ValidFrom.key(), p.ValidTo.key()
	k := day.key()
	today := from <= k && k <= to
	yesterday, knowYesterday := false, false
	for _, w := range p.Windows {
		if !w.Contains(sec) {
			continue
		}
		if !w.crosses() || sec >= w.Start {
			if today {
				open = true
				break
			}
			continue
		}
		// The early-morning part of a window that opened yesterday.
		if !knowYesterday {
			y := day.prev().key()
			yesterday, knowYesterday = from <= y && y <= to, true
		}
		if yesterday {
			open = true
			break
		}
	}
	return today || open, open
}

// Active reports whether the zone applies at t in the city's zone loc
// (t's own if nil): always when it has no windows, else while one is
// open.
func (z *Zone) Active(t time.Time, loc *time.Location) bool {
	if len(z.Windows) == 0 {
		return true
	}
	_, sec := wallClock(t, loc)
	for _, w := range z.Windows {
		if w.Contains(sec) {
			return true
		}
	}
	return false
}

// fileStamp is a file as it was read: its size and time, and a hash of
// what was read.
type fileStamp struct {
	path string
	size int64
	mod  time.Time
	sum  [sha256.Size]byte
}

// readStamped reads a file, stamping it with what stat said before the
// read: if the file changes during the read, its next stamp differs.
func readStamped(path string) (fileStamp, []byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fileStamp{}, nil, err
	}
	return fileStamp{path: path, size: st.Size(), mod: st.ModTime(), sum: sha256.Sum256(data)}, data, nil
}

// Files returns the files the city was loaded from, the city file first;
// none for a city built in code.
func (c *City) Files() []string {
	out := make([]string, 0, len(c.files))
	for _, f := range c.files {
		out = append(out, f.path)
	}
	return out
}
