// Package cap publishes urbanwatch's rainstorm and waterlogging alerts as
// OASIS Common Alerting Protocol 1.2 messages, following China's profile
// GB/T 35965.1-2018: the message identifier is built from the 6-digit GB/T
// 2260 region code, times carry the +08:00 offset, and the human text is
// written in zh-CN.
//
// Compose turns one alert event (telemetry.Alert) into a Message; XML
// renders it as a CAP document after checking what the XML schema cannot;
// Parse reads such a document back; Feed lists messages as an Atom 1.0 feed
// for consumers that poll. The package holds no state: the caller keeps the
// messages already sent for an alert (as Refs) and the sequence numbers.
package cap

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Namespace is the XML namespace of a CAP 1.2 document.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// ContentType is the media type a CAP document is served with.
const ContentType = "application/cap+xml"

// GeocodeRegion is the valueName of a geocode holding a GB/T 2260
// administrative region code.
const GeocodeRegion = "GB/T 2260"

// The valueNames of the eventCodes Compose writes.
const (
	EventCodeRule  = "urbanwatch:rule"
	EventCodeLevel = "urbanwatch:level"
)

// The values of Message.MsgType that Compose writes.
const (
	MsgAlert  = "Alert"
	MsgUpdate = "Update"
	MsgCancel = "Cancel"
)

// ErrNothingToCancel is returned (wrapped) by Compose for a resolved alert
// event when no earlier message of the alert is given: there is nothing to
// cancel, and the caller should publish nothing.
var ErrNothingToCancel = errors.New("resolved alert has no earlier message to cancel")

// Profile is who sends the warnings. The zero value is not usable: Sender
// and RegionCode are required.
type Profile struct {
	// Sender is the CAP sender, e.g. "urbanwatch@370700": no spaces,
	// commas, '<' or '&'.
	Sender string
	// SenderName is the human-readable sender, e.g. "潍坊市城市管理局".
	SenderName string
	// RegionCode is the 6-digit GB/T 2260 code of the sender's region, e.g.
	// "370700" for Weifang; it starts every identifier and is always one of
	// the area's geocodes.
	RegionCode string
	// Status is the CAP status: "Actual" (the default when empty),
	// "Exercise", "System", "Test" or "Draft".
	Status string
	// Web is an optional base URL; an alert's page is
	// Web + "/alerts/" + url.PathEscape(alert id).
	Web string
	// Location is the zone sent, effective and expires are written in
	// (default Asia/Shanghai, or a fixed +08:00 when the time zone database
	// is missing).
	Location *time.Location
}

// Ref names an earlier message, for a message's references.
type Ref struct {
	Sender     string
	Identifier string
	Sent       time.Time
}

// String returns the reference as CAP writes it: "sender,identifier,sent".
func (r Ref) String() string {
	return r.Sender + "," + r.Identifier + "," + formatTime(r.Sent)
}

// RefTo returns the Ref naming m, to pass to a later Compose of the same
// alert.
func RefTo(m *Message) Ref {
	return Ref{Sender: m.Sender, Identifier: m.Identifier, Sent: m.Sent}
}

// Circle is a disc on the ground: a centre (WGS-84) and a radius in
// kilometres.
type Circle struct {
	Center   telemetry.Location
	RadiusKM float64
}

// NameValue is a CAP valueName/value pair: an eventCode, a parameter or a
// geocode.
type NameValue struct {
	Name  string
	Value string
}

// Geocode is a coded area, e.g. {GeocodeRegion, "370705"}.
type Geocode = NameValue

// Area is where a warning applies. Each polygon is a closed ring of WGS-84
// points (first point repeated last, at least 4 points).
type Area struct {
	Desc     string
	Polygons [][]telemetry.Location
	Circles  []Circle
	Geocodes []Geocode
}

// Info is one CAP info block: the event, its urgency, severity and
// certainty, the text for people and the areas it applies to. A zero
// Effective or Expires is left out of the document.
type Info struct {
	Language     string   // RFC 5646 tag; Compose writes "zh-CN"
	Category     []string // at least one of CAP's categories (Met, Transport…)
	Event        string   // what happens, e.g. "暴雨橙色预警"
	ResponseType []string // CAP responseTypes (Prepare, Avoid, Shelter, AllClear…)
	Urgency      string   // Immediate, Expected, Future, Past or Unknown
	Severity     string   // Extreme, Severe, Moderate, Minor or Unknown
	Certainty    string   // Observed, Likely, Possible, Unlikely or Unknown
	EventCode    []NameValue
	Effective    time.Time
	Expires      time.Time
	SenderName   string
	Headline     string
	Description  string
	Instruction  string
	Web          string // absolute URL of a page about the event
	Parameters   []NameValue
	Areas        []Area
}

// Message is one CAP 1.2 alert document. Times are written in their own
// zone (Compose puts them in the Profile's), without fractional seconds.
type Message struct {
	Identifier  string
	Sender      string
	Sent        time.Time
	Status      string
	MsgType     string
	Scope       string
	Restriction string // required when Scope is "Restricted"
	Addresses   string // required when Scope is "Private"
	Note        string
	References  []Ref
	Info        []Info
}

// Identifier builds a message identifier from the region code, the sent
// time and a sequence number:
//
//	{regionCode}-UW-{sent as YYYYMMDDhhmmss in +08:00}-{seq, zero-padded to 6 digits}
//
// e.g. "370700-UW-20261124213105-000042". It is unique as long as the
// caller never reuses a seq within one second of one region (a counter that
// only grows does); a seq above 999999 simply takes more digits.
func Identifier(regionCode string, sent time.Time, seq uint64) string {
	return fmt.Sprintf("%s-UW-%s-%06d", regionCode, sent.In(chinaTime).Format("20060102150405"), seq)
}

// chinaTime is China Standard Time, UTC+8 all year round. It is immutable.
var chinaTime = time.FixedZone("CST", 8*3600)

// defaultLocation returns Asia/Shanghai, or a fixed +08:00 when the time
// zone database is missing (China has had no daylight saving since 1991, so
// the two agree on every date this package writes).
func defaultLocation() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return chinaTime
}

// formatTime writes t in CAP's dateTime form: seconds, an explicit offset,
// never "Z" (UTC is "-00:00", as CAP 1.2 §3.3.2 asks).
func formatTime(t time.Time) string {
	s := t.Truncate(time.Second).Format("2006-01-02T15:04:05-07:00")
	if _, off := t.Zone(); off == 0 {
		s = strings.TrimSuffix(s, "+00:00") + "-00:00"
	}
	return s
}

// parseTime reads a CAP dateTime.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("dateTime %q: %w", s, err)
	}
	return t, nil
}

// formatPoint writes a point as CAP does: latitude first.
func formatPoint(p telemetry.Location) string {
	return formatFloat(p.Lat) + "," + formatFloat(p.Lon)
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// formatPolygon writes a polygon as "lat,lon lat,lon …".
func formatPolygon(ring []telemetry.Location) string {
	parts := make([]string, len(ring))
	for i, p := range ring {
		parts[i] = formatPoint(p)
	}
	return strings.Join(parts, " ")
}

// formatCircle writes a circle as "lat,lon radius".
func formatCircle(c Circle) string { return formatPoint(c.Center) + " " + formatFloat(c.RadiusKM) }

func parsePoint(s string) (telemetry.Location, error) {
	la, lo, ok := strings.Cut(s, ",")
	if !ok {
		return telemetry.Location{}, fmt.Errorf("point %q: want lat,lon", s)
	}
	lat, err := strconv.ParseFloat(la, 64)
	if err != nil {
		return telemetry.Location{}, fmt.Errorf("point %q: latitude: %w", s, err)
	}
	lon, err := strconv.ParseFloat(lo, 64)
	if err != nil {
		return telemetry.Location{}, fmt.Errorf("point %q: longitude: %w", s, err)
	}
	return telemetry.Location{Lat: lat, Lon: lon}, nil
}

func parsePolygon(s string) ([]telemetry.Location, error) {
	var ring []telemetry.Location
	for _, f := range strings.Fields(s) {
		p, err := parsePoint(f)
		if err != nil {
			return nil, fmt.Errorf("polygon: %w", err)
		}
		ring = append(ring, p)
	}
	return ring, nil
}

func parseCircle(s string) (Circle, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Circle{}, fmt.Errorf("circle %q: want \"lat,lon radius\"", s)
	}
	p, err := parsePoint(f[0])
	if err != nil {
		return Circle{}, fmt.Errorf("circle: %w", err)
	}
	r, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return Circle{}, fmt.Errorf("circle %q: radius: %w", s, err)
	}
	return Circle{Center: p, RadiusKM: r}, nil
}

// The enumerations of the CAP 1.2 schema.
var (
	enumStatus       = []string{"Actual", "Exercise", "System", "Test", "Draft"}
	enumMsgType      = []string{"Alert", "Update", "Cancel", "Ack", "Error"}
	enumScope        = []string{"Public", "Restricted", "Private"}
	enumCategory     = []string{"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"}
	enumResponseType = []string{"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"}
	enumUrgency      = []string{"Immediate", "Expected", "Future", "Past", "Unknown"}
	enumSeverity     = []string{"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
	enumCertainty    = []string{"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
)

func oneOf(field, v string, enum []string) error {
	for _, e := range enum {
		if v == e {
			return nil
		}
	}
	if v == "" {
		return fmt.Errorf("%s is missing", field)
	}
	return fmt.Errorf("%s %q is not one of %s", field, v, strings.Join(enum, ", "))
}

// checkToken checks an identifier or a sender: CAP forbids spaces, commas
// and the restricted characters '<' and '&' in them (and in the references
// that repeat them).
func checkToken(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s is missing", field)
	}
	if i := strings.IndexFunc(v, func(r rune) bool {
		return r == ',' || r == '<' || r == '&' || r <= ' ' || r == 0x7f || r == 0x85 || r == 0xa0 || r == 0x3000
	}); i >= 0 {
		r, _ := utf8.DecodeRuneInString(v[i:])
		return fmt.Errorf("%s %q: character %q at byte %d is not allowed (no spaces, commas, '<' or '&')", field, v, r, i)
	}
	return nil
}

// checkLanguage checks an RFC 5646 tag as xs:language has it.
func checkLanguage(v string) error {
	for i, sub := range strings.Split(v, "-") {
		if len(sub) < 1 || len(sub) > 8 {
			return fmt.Errorf("language %q is not a language tag", v)
		}
		for _, r := range sub {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && '0' <= r && r <= '9') {
				return fmt.Errorf("language %q is not a language tag", v)
			}
		}
	}
	return nil
}

func checkPoint(p telemetry.Location) error {
	if math.IsNaN(p.Lat) || p.Lat < -90 || p.Lat > 90 {
		return fmt.Errorf("latitude %v out of range [-90, 90]", p.Lat)
	}
	if math.IsNaN(p.Lon) || p.Lon < -180 || p.Lon > 180 {
		return fmt.Errorf("longitude %v out of range [-180, 180]", p.Lon)
	}
	return nil
}

// Validate checks what the CAP 1.2 schema cannot, and what it can, so that
// XML never writes a document a consumer would refuse: identifier and
// sender characters, the required fields and their enumerations, each
// reference, each polygon closed with at least 4 points, every latitude and
// longitude in range, every circle radius positive. An Update or Cancel must
// reference the messages it updates or cancels.
func (m *Message) Validate() error {
	if m == nil {
		return errors.New("nil message")
	}
	if err := checkToken("identifier", m.Identifier); err != nil {
		return err
	}
	if err := checkToken("sender", m.Sender); err != nil {
		return err
	}
	if m.Sent.IsZero() {
		return errors.New("sent is missing")
	}
	for _, c := range []struct {
		field, v string
		enum     []string
	}{{"status", m.Status, enumStatus}, {"msgType", m.MsgType, enumMsgType}, {"scope", m.Scope, enumScope}} {
		if err := oneOf(c.field, c.v, c.enum); err != nil {
			return err
		}
	}
	if m.Scope == "Restricted" && strings.TrimSpace(m.Restriction) == "" {
		return errors.New("scope Restricted needs a restriction")
	}
	if m.Scope == "Private" && strings.TrimSpace(m.Addresses) == "" {
		return errors.New("scope Private needs addresses")
	}
	if (m.MsgType == MsgUpdate || m.MsgType == MsgCancel) && len(m.References) == 0 {
		return fmt.Errorf("msgType %s needs references to the earlier messages", m.MsgType)
	}
	for i, r := range m.References {
		if err := checkToken("sender", r.Sender); err != nil {
			return fmt.Errorf("reference %d: %w", i+1, err)
		}
		if err := checkToken("identifier", r.Identifier); err != nil {
			return fmt.Errorf("reference %d: %w", i+1, err)
		}
		if r.Sent.IsZero() {
			return fmt.Errorf("reference %d (%s): sent is missing", i+1, r.Identifier)
		}
	}
	for i := range m.Info {
		if err := m.Info[i].validate(); err != nil {
			return fmt.Errorf("info %d: %w", i+1, err)
		}
	}
	return nil
}

func (in *Info) validate() error {
	if in.Language != "" {
		if err := checkLanguage(in.Language); err != nil {
			return err
		}
	}
	if len(in.Category) == 0 {
		return errors.New("category is missing")
	}
	for _, c := range in.Category {
		if err := oneOf("category", c, enumCategory); err != nil {
			return err
		}
	}
	if strings.TrimSpace(in.Event) == "" {
		return errors.New("event is missing")
	}
	for _, r := range in.ResponseType {
		if err := oneOf("responseType", r, enumResponseType); err != nil {
			return err
		}
	}
	if err := oneOf("urgency", in.Urgency, enumUrgency); err != nil {
		return err
	}
	if err := oneOf("severity", in.Severity, enumSeverity); err != nil {
		return err
	}
	if err := oneOf("certainty", in.Certainty, enumCertainty); err != nil {
		return err
	}
	for _, kv := range in.EventCode {
		if kv.Name == "" {
			return fmt.Errorf("eventCode with value %q has no valueName", kv.Value)
		}
	}
	for _, kv := range in.Parameters {
		if kv.Name == "" {
			return fmt.Errorf("parameter with value %q has no valueName", kv.Value)
		}
	}
	if !in.Effective.IsZero() && !in.Expires.IsZero() && in.Expires.Before(in.Effective) {
		return fmt.Errorf("expires %s is before effective %s", formatTime(in.Expires), formatTime(in.Effective))
	}
	if in.Web != "" {
		u, err := url.Parse(in.Web)
		if err != nil {
			return fmt.Errorf("web: %w", err)
		}
		if !u.IsAbs() {
			return fmt.Errorf("web %q is not an absolute URL", in.Web)
		}
	}
	for i := range in.Areas {
		if err := in.Areas[i].validate(); err != nil {
			return fmt.Errorf("area %d: %w", i+1, err)
		}
	}
	return nil
}

func (a *Area) validate() error {
	if strings.TrimSpace(a.Desc) == "" {
		return errors.New("areaDesc is missing")
	}
	for i, ring := range a.Polygons {
		if len(ring) < 4 {
			return fmt.Errorf("polygon %d has %d points, a closed ring needs at least 4", i+1, len(ring))
		}
		if ring[0] != ring[len(ring)-1] {
			return fmt.Errorf("polygon %d is not closed: first point %s, last %s", i+1, formatPoint(ring[0]), formatPoint(ring[len(ring)-1]))
		}
		for j, p := range ring {
			if err := checkPoint(p); err != nil {
				return fmt.Errorf("polygon %d point %d: %w", i+1, j+1, err)
			}
		}
	}
	for i, c := range a.Circles {
		if err := checkPoint(c.Center); err != nil {
			return fmt.Errorf("circle %d: %w", i+1, err)
		}
		if !(c.RadiusKM > 0) || math.IsInf(c.RadiusKM, 1) {
			return fmt.Errorf("circle %d: radius %v km, want > 0", i+1, c.RadiusKM)
		}
	}
	for _, g := range a.Geocodes {
		if g.Name == "" || g.Value == "" {
			return fmt.Errorf("geocode %q=%q needs a valueName and a value", g.Name, g.Value)
		}
	}
	return nil
}
