package config

import (
	"time"

	"github.com/paulmach/orb"
	"gopkg.in/yaml.v3"
)

// City is the supervision model of one city (city.yaml): who runs trucks,
// which trucks may drive where and when, the sites and zones they are judged
// against, the gauges and depth points, and the thresholds of every rule.
// The device registry says who may publish; City says what their messages
// mean. A loaded City is immutable and safe for concurrent use; a reload
// builds a new one.
//
// Coordinates are WGS-84 once loaded. A file drawn on a Chinese web map
// (GCJ-02) says so with crs: gcj02 and is converted at load.
type City struct {
	// Name is the city's name for messages, e.g. "潍坊市".
	Name string `yaml:"name"`
	// RegionCode is the 6-digit administrative region code (GB/T 2260),
	// default "370700" (Weifang); CAP identifiers are built from it.
	RegionCode string `yaml:"region_code"`
	// TimeZone is the IANA zone permit windows and zone windows are read in,
	// default "Asia/Shanghai".
	TimeZone string `yaml:"time_zone"`
	// CRS is the coordinate system of the coordinates written in this file
	// (zones, gauges): "wgs84" (default) or "gcj02".
	CRS string `yaml:"crs"`
	// Rules holds every rule's thresholds; what is left out takes the
	// defaults of DefaultRules.
	Rules RuleSettings `yaml:"rules"`

	Companies []Company `yaml:"companies"`
	Trucks    []Truck   `yaml:"trucks"`
	Permits   []Permit  `yaml:"permits"`
	// SitesFile is a GeoJSON FeatureCollection of construction and disposal
	// sites (see Site); RoutesFile one of permitted routes (see Route);
	// DistrictsFile, optional, one of districts (properties name and
	// adcode) used to name the district of a truck's position.
	SitesFile     GeoFile `yaml:"sites"`
	RoutesFile    GeoFile `yaml:"routes"`
	DistrictsFile GeoFile `yaml:"districts"`
	Zones         []Zone  `yaml:"zones"`
	Gauges        []Gauge `yaml:"gauges"`

	// Filled by LoadCity from the files above; a city built in code sets
	// them itself, in WGS-84, before Validate.
	Sites     []Site         `yaml:"-"`
	Routes    []Route        `yaml:"-"`
	Districts []District     `yaml:"-"`
	Location  *time.Location `yaml:"-"`

	path      string
	index     cityIndex
	doc       *yaml.Node       // the city file's nodes, for the lines of errors
	files     []fileStamp      // the files it was read from, as read
	badGeom   map[geomRef]bool // features whose geometry could not be read (reported at load)
	noFile    map[geomKind]bool
	converted bool // zones and gauges converted from GCJ-02 by Validate
}

// GeoFile names a GeoJSON file and the coordinate system it is drawn in.
// Relative paths are relative to the city file.
type GeoFile struct {
	File string `yaml:"file"`
	CRS  string `yaml:"crs"` // "wgs84" (default) or "gcj02"
}

// Company is a licensed transport company.
type Company struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Contacts are its compliance managers, who receive its trucks' alerts.
	Contacts []Contact `yaml:"contacts"`
}

// Contact is a person alerts can be sent to.
type Contact struct {
	Name string `yaml:"name"`
	// Phone is an E.164 number, e.g. "+8613800000000".
	Phone string `yaml:"phone"`
	Role  string `yaml:"role"`
}

// Truck is a licensed muck truck. A device belongs to at most one truck.
type Truck struct {
	// Plate is the licence plate, e.g. "鲁G·12345" (the separator dot is
	// optional on input and normalised to "·").
	Plate   string   `yaml:"plate"`
	Company string   `yaml:"company"` // Company.ID
	Devices []string `yaml:"devices"` // registry device ids, class trucks
	// RatedLoadKg is the load its licence allows (核定载质量); 0 leaves it
	// out of the overload rule.
	RatedLoadKg float64 `yaml:"rated_load_kg"`
}

// Permit is a 建筑垃圾准运证: one truck may carry waste from its origin sites
// to its disposal sites, along its routes, in its daily windows, between
// ValidFrom and ValidTo.
type Permit struct {
	ID    string `yaml:"id"`
	Truck string `yaml:"truck"` // Truck.Plate
	// ValidFrom and ValidTo are dates ("2026-11-01") in the city's time
	// zone, both inclusive: a window that opens on ValidTo may run past
	// midnight.
	ValidFrom Date `yaml:"valid_from"`
	ValidTo   Date `yaml:"valid_to"`
	// Windows are the daily hours the truck may drive, e.g. "20:00-06:00";
	// a window whose end is not after its start crosses midnight and
	// belongs to the day it opens.
	Windows  []Window `yaml:"windows"`
	Origins  []string `yaml:"origins"`  // construction Site ids
	Disposal []string `yaml:"disposal"` // disposal Site ids
	Routes   []string `yaml:"routes"`   // Route ids
	// CorridorM is how far from its routes the truck may be, in metres;
	// 0 takes rules.off_route.corridor_m.
	CorridorM float64 `yaml:"corridor_m"`
}

// Date is a calendar date in the city's time zone, written "2006-01-02".
type Date struct{ Year, Month, Day int }

// Window is a daily time window, written "HH:MM-HH:MM", in seconds after
// midnight. End ≤ Start means the window crosses midnight.
type Window struct{ Start, End int }

// SiteKind says what a site is for.
type SiteKind string

// The site kinds.
const (
	SiteConstruction SiteKind = "construction" // 工地, where loads come from
	SiteDisposal     SiteKind = "disposal"     // 消纳场, where they may be tipped
)

// Site is a construction or disposal site, a GeoJSON Feature with
// properties id, name, kind and optional district, and a Polygon or
// MultiPolygon geometry.
type Site struct {
	ID       string
	Name     string
	Kind     SiteKind
	District string
	Area     orb.MultiPolygon // WGS-84, [lon, lat]
	// WashArea is where trucks wash their wheels before leaving (a
	// construction site's 洗车台), from the feature's wash_area property (a
	// GeoJSON Polygon or MultiPolygon inside Area); nil when it has none, and
	// then unwashed_exit does not judge the site.
	WashArea orb.MultiPolygon
	Line     int // line of the feature in its file, for messages
}

// Route is a permitted route, a GeoJSON Feature with properties id and name
// and a LineString geometry.
type Route struct {
	ID   string
	Name string
	Path orb.LineString // WGS-84, [lon, lat]
	Line int
}

// District is an administrative district outline.
type District struct {
	Name   string
	Adcode string
	Area   orb.MultiPolygon

	line int // of its feature in its file
}

// Zone is a no-code rule: while one of its windows is open, a truck inside
// its area that matches its condition for rules.zone_violation.dwell raises
// zone_violation with the zone's name.
type Zone struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Area is a GeoJSON Polygon or MultiPolygon geometry object written in
	// YAML, e.g. {type: Polygon, coordinates: [[[lon, lat], ...]]}.
	Area GeoJSONGeometry `yaml:"area"`
	// Windows limit the zone to daily hours; none means always.
	Windows []Window `yaml:"windows"`
	// Severity of its alerts, default "warning".
	Severity  string        `yaml:"severity"`
	Condition ZoneCondition `yaml:"condition"`
	Line      int           `yaml:"-"`
}

// GeoJSONGeometry is a Polygon or MultiPolygon read from a GeoJSON geometry
// object written in YAML.
type GeoJSONGeometry struct {
	Area orb.MultiPolygon
}

// ZoneCondition is what a truck in a zone must match to violate it. Every
// predicate that is set must hold; at least one must be set. AnyTruck alone
// means any muck truck present violates it.
type ZoneCondition struct {
	AnyTruck    bool     `yaml:"any_truck"`
	MaxSpeedKmh float64  `yaml:"max_speed_kmh"` // violated above this speed
	MinSpeedKmh float64  `yaml:"min_speed_kmh"` // only trucks moving at least this fast
	Cover       []string `yaml:"cover"`         // cover states that violate: open, fault, closed
	Body        []string `yaml:"body"`          // body states that violate: raised, down
	Loaded      *bool    `yaml:"loaded"`        // only loaded (true) or only empty (false) trucks
}

// GaugeKind says what a gauge measures.
type GaugeKind string

// The gauge kinds.
const (
	GaugeRain  GaugeKind = "rain"  // tipping-bucket rain gauge
	GaugeDepth GaugeKind = "depth" // water depth at a waterlogging point
)

// Gauge is a rain gauge or a water-depth point.
type Gauge struct {
	Device   string    `yaml:"device"` // registry device id, class gauges
	Name     string    `yaml:"name"`   // e.g. "胜利街下穿立交"
	Kind     GaugeKind `yaml:"kind"`
	District string    `yaml:"district"`
	Lat      float64   `yaml:"lat"`
	Lon      float64   `yaml:"lon"`
	// WarnCM and CloseCM override rules.waterlogging for a depth point.
	WarnCM  float64 `yaml:"warn_cm"`
	CloseCM float64 `yaml:"close_cm"`
}

// RuleSettings are the thresholds of every rule.
type RuleSettings struct {
	// ReorderWindow bounds how late (in event time, behind the newest
	// message of the same subject) a message may be and still be
	// evaluated; older ones are counted and skipped by the rules (they are
	// stored all the same). Default 2m.
	ReorderWindow time.Duration `yaml:"reorder_window"`
	// MinSats is the fewest satellites for a fix to move a truck, default 4.
	MinSats int `yaml:"min_sats"`

	UncoveredLoad      UncoveredLoadRule  `yaml:"uncovered_load"`
	OffRoute           OffRouteRule       `yaml:"off_route"`
	IllegalDumping     IllegalDumpingRule `yaml:"illegal_dumping"`
	OutsidePermitHours MovingRule         `yaml:"outside_permit_hours"`
	NoPermit           MovingRule         `yaml:"no_permit"`
	SignalLost         SilenceRule        `yaml:"signal_lost"`
	Rainstorm          RainstormRule      `yaml:"rainstorm"`
	HeavyRain          HeavyRainRule      `yaml:"heavy_rain_1h"`
	Waterlogging       WaterloggingRule   `yaml:"waterlogging"`
	SensorOffline      SilenceRule        `yaml:"sensor_offline"`
	ZoneViolation      DwellRule          `yaml:"zone_violation"`
	Overload           OverloadRule       `yaml:"overload"`
	UnwashedExit       UnwashedExitRule   `yaml:"unwashed_exit"`
	Spillage           SpillageRule       `yaml:"spillage"`
}

// OverloadRule (超量装载): a truck with a load sensor and a rated load,
// loaded above rated × (1 + TolerancePct/100), moving outside a site, for
// Dwell.
type OverloadRule struct {
	TolerancePct float64       `yaml:"tolerance_pct"` // default 10
	MinSpeedKmh  float64       `yaml:"min_speed_kmh"` // default 5
	Dwell        time.Duration `yaml:"dwell"`         // default 30s
	ClearAfter   time.Duration `yaml:"clear_after"`   // at or below the limit this long; default 30s
	Severity     string        `yaml:"severity"`      // default major
}

// UnwashedExitRule (带泥上路): a truck loaded in a site with a wash area that
// leaves the site without one stay of MinWash in the wash area since it
// was loaded. An event, resolved when the truck next enters a site or
// ClearAfter after it.
type UnwashedExitRule struct {
	MinWash    time.Duration `yaml:"min_wash"`    // default 20s
	ClearAfter time.Duration `yaml:"clear_after"` // default 30m
	Severity   string        `yaml:"severity"`    // default warning
}

// SpillageRule (道路抛洒): a loaded truck whose load falls by DropPct or more
// within Within while faster than MinSpeedKmh outside every site, and does
// not recover within Within (a load-sensor glitch recovers). An event,
// resolved when the truck next enters a site or ClearAfter after it.
type SpillageRule struct {
	DropPct     float64       `yaml:"drop_pct"`      // default 10
	Within      time.Duration `yaml:"within"`        // default 60s
	MinSpeedKmh float64       `yaml:"min_speed_kmh"` // default 10
	ClearAfter  time.Duration `yaml:"clear_after"`   // default 30m
	Severity    string        `yaml:"severity"`      // default major
}

// UncoveredLoadRule: loaded, cover open or fault, moving, outside every
// site, for Dwell.
type UncoveredLoadRule struct {
	LoadedKg    float64       `yaml:"loaded_kg"`     // default 1000
	MinSpeedKmh float64       `yaml:"min_speed_kmh"` // default 5
	Dwell       time.Duration `yaml:"dwell"`         // default 30s
	ClearAfter  time.Duration `yaml:"clear_after"`   // cover closed this long; default 10s
	Severity    string        `yaml:"severity"`      // default warning
}

// OffRouteRule: loaded and moving farther than the corridor from every
// route of the permit.
type OffRouteRule struct {
	CorridorM   float64       `yaml:"corridor_m"`    // default 50
	MinSpeedKmh float64       `yaml:"min_speed_kmh"` // default 5
	Dwell       time.Duration `yaml:"dwell"`         // default 60s
	ClearAfter  time.Duration `yaml:"clear_after"`   // default 30s
	Severity    string        `yaml:"severity"`      // default warning
}

// IllegalDumpingRule: body raised for RaisedFor, or load down by
// LoadDropPct within LoadDropWithin while slower than MaxSpeedKmh,
// outside the permit's disposal and origin sites.
type IllegalDumpingRule struct {
	RaisedFor      time.Duration `yaml:"raised_for"`       // default 10s
	LoadDropPct    float64       `yaml:"load_drop_pct"`    // default 50
	LoadDropWithin time.Duration `yaml:"load_drop_within"` // default 5m
	MaxSpeedKmh    float64       `yaml:"max_speed_kmh"`    // default 3
	Severity       string        `yaml:"severity"`         // default critical
}

// MovingRule fires on a truck moving outside a site for Dwell.
type MovingRule struct {
	MinSpeedKmh float64       `yaml:"min_speed_kmh"` // default 5
	Dwell       time.Duration `yaml:"dwell"`         // default 30s
	ClearAfter  time.Duration `yaml:"clear_after"`   // default 5m
	Severity    string        `yaml:"severity"`      // outside_permit_hours warning, no_permit major
}

// SilenceRule fires when a subject has been silent for After.
type SilenceRule struct {
	After    time.Duration `yaml:"after"`    // signal_lost 5m, sensor_offline 30m
	Severity string        `yaml:"severity"` // signal_lost warning, sensor_offline minor
}

// RainLevel is one CMA rainstorm warning level: at least MM of rain in
// Window.
type RainLevel struct {
	MM       float64       `yaml:"mm"`
	Window   time.Duration `yaml:"window"`
	Severity string        `yaml:"severity"`
}

// RainstormRule holds the four CMA levels (GB/T 27962; CMA Order No. 16):
// blue ≥ 50 mm/12 h, yellow ≥ 50 mm/6 h, orange ≥ 50 mm/3 h, red ≥ 100 mm/3 h.
type RainstormRule struct {
	Blue   RainLevel `yaml:"blue"`
	Yellow RainLevel `yaml:"yellow"`
	Orange RainLevel `yaml:"orange"`
	Red    RainLevel `yaml:"red"`
	// ClearAfter: the alert clears once no level has held for this long,
	// default 1h.
	ClearAfter time.Duration `yaml:"clear_after"`
	// MaxGap: a gap between a gauge's reports longer than this is unknown
	// rain, not zero; while it lies inside a window that window's level
	// is not lowered. Default 10m.
	MaxGap time.Duration `yaml:"max_gap"`
}

// HeavyRainRule is 短时强降水: at least MM in Window.
type HeavyRainRule struct {
	MM         float64       `yaml:"mm"`          // default 20
	Window     time.Duration `yaml:"window"`      // default 1h
	ClearAfter time.Duration `yaml:"clear_after"` // default 1h
	Severity   string        `yaml:"severity"`    // default warning
}

// WaterloggingRule holds the depth thresholds of every point, unless the
// point overrides them.
type WaterloggingRule struct {
	WarnCM       float64       `yaml:"warn_cm"`       // default 15
	CloseCM      float64       `yaml:"close_cm"`      // default 25 (road closure)
	HysteresisCM float64       `yaml:"hysteresis_cm"` // default 3
	ClearAfter   time.Duration `yaml:"clear_after"`   // below warn−hysteresis this long; default 10m
	WarnSeverity string        `yaml:"warn_severity"` // default warning
	CloseSev     string        `yaml:"close_severity"`
}

// DwellRule is a condition that must hold for Dwell to raise and be absent
// for ClearAfter to clear.
type DwellRule struct {
	Dwell      time.Duration `yaml:"dwell"`       // default 10s
	ClearAfter time.Duration `yaml:"clear_after"` // default 10s
}

// The alert severities, lowest first.
const (
	SeverityMinor    = "minor"
	SeverityWarning  = "warning"
	SeverityMajor    = "major"
	SeverityCritical = "critical"
)

// DefaultRules returns the documented defaults of every rule.
func DefaultRules() RuleSettings {
	return RuleSettings{
		ReorderWindow: 2 * time.Minute,
		MinSats:       4,
		UncoveredLoad: UncoveredLoadRule{LoadedKg: 1000, MinSpeedKmh: 5, Dwell: 30 * time.Second,
			ClearAfter: 10 * time.Second, Severity: SeverityWarning},
		OffRoute: OffRouteRule{CorridorM: 50, MinSpeedKmh: 5, Dwell: 60 * time.Second,
			ClearAfter: 30 * time.Second, Severity: SeverityWarning},
		IllegalDumping: IllegalDumpingRule{RaisedFor: 10 * time.Second, LoadDropPct: 50,
			LoadDropWithin: 5 * time.Minute, MaxSpeedKmh: 3, Severity: SeverityCritical},
		OutsidePermitHours: MovingRule{MinSpeedKmh: 5, Dwell: 30 * time.Second, ClearAfter: 5 * time.Minute,
			Severity: SeverityWarning},
		NoPermit: MovingRule{MinSpeedKmh: 5, Dwell: 30 * time.Second, ClearAfter: 5 * time.Minute,
			Severity: SeverityMajor},
		SignalLost: SilenceRule{After: 5 * time.Minute, Severity: SeverityWarning},
		Rainstorm: RainstormRule{
			Blue:       RainLevel{MM: 50, Window: 12 * time.Hour, Severity: SeverityMinor},
			Yellow:     RainLevel{MM: 50, Window: 6 * time.Hour, Severity: SeverityWarning},
			Orange:     RainLevel{MM: 50, Window: 3 * time.Hour, Severity: SeverityMajor},
			Red:        RainLevel{MM: 100, Window: 3 * time.Hour, Severity: SeverityCritical},
			ClearAfter: time.Hour, MaxGap: 10 * time.Minute,
		},
		HeavyRain: HeavyRainRule{MM: 20, Window: time.Hour, ClearAfter: time.Hour, Severity: SeverityWarning},
		Waterlogging: WaterloggingRule{WarnCM: 15, CloseCM: 25, HysteresisCM: 3, ClearAfter: 10 * time.Minute,
			WarnSeverity: SeverityWarning, CloseSev: SeverityCritical},
		SensorOffline: SilenceRule{After: 30 * time.Minute, Severity: SeverityMinor},
		ZoneViolation: DwellRule{Dwell: 10 * time.Second, ClearAfter: 10 * time.Second},
		Overload: OverloadRule{TolerancePct: 10, MinSpeedKmh: 5, Dwell: 30 * time.Second, ClearAfter: 30 * time.Second,
			Severity: SeverityMajor},
		UnwashedExit: UnwashedExitRule{MinWash: 20 * time.Second, ClearAfter: 30 * time.Minute, Severity: SeverityWarning},
		Spillage: SpillageRule{DropPct: 10, Within: 60 * time.Second, MinSpeedKmh: 10, ClearAfter: 30 * time.Minute,
			Severity: SeverityMajor},
	}
}

// cityIndex holds the lookups LoadCity builds.
type cityIndex struct {
	truckByDevice map[string]*Truck
	truckByPlate  map[string]*Truck
	company       map[string]*Company
	site          map[string]*Site
	route         map[string]*Route
	permits       map[string][]*Permit // by plate
	gauge         map[string]*Gauge

	districtBounds []orb.Bound // of c.Districts, by position
}

// TruckOf returns the truck a device belongs to, or nil.
func (c *City) TruckOf(device string) *Truck { return c.index.truckByDevice[device] }

// Truck returns the truck with the plate (normalised), or nil.
func (c *City) Truck(plate string) *Truck { return c.index.truckByPlate[NormalizePlate(plate)] }

// Company returns the company with the id, or nil.
func (c *City) Company(id string) *Company { return c.index.company[id] }

// Site returns the site with the id, or nil.
func (c *City) Site(id string) *Site { return c.index.site[id] }

// Route returns the route with the id, or nil.
func (c *City) Route(id string) *Route { return c.index.route[id] }

// PermitsOf returns the permits of the truck with the plate, in file order.
func (c *City) PermitsOf(plate string) []*Permit { return c.index.permits[NormalizePlate(plate)] }

// Gauge returns the gauge or depth point of a device, or nil.
func (c *City) Gauge(device string) *Gauge { return c.index.gauge[device] }

// Path returns the file the city was loaded from ("" if built in code).
func (c *City) Path() string { return c.path }
