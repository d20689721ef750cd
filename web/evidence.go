package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/atomicfile"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// An evidence packet is everything an officer needs to show what a truck
// did: the alert, the truck, the permit in force, the rule's thresholds and
// what was measured, the trip, the track from evidenceMargin before the
// offence began to evidenceMargin after it ended, the cover/body/load
// timeline, and the raw records as stored in InfluxDB.
//
// Packets are content-addressed: each is written once to
// DATA_DIR/evidence/{sha256}.json and downloaded from there, so the digest
// on the page is the digest of the bytes downloaded. While the window is
// still open (the offence goes on, or ended less than evidenceMargin ago)
// each request builds a new provisional packet; the first packet built
// after the window closed is final and is served from then on.
const (
	evidenceFormat = "urbanwatch-evidence/1"
	evidenceMargin = 10 * time.Minute
	// evidenceMaxSpan bounds how much of a long offence one packet holds.
	evidenceMaxSpan = 2 * time.Hour
	// evidenceSettle is how long after the window closes the stored history
	// is taken as complete (the InfluxDB writer drains in batches).
	evidenceSettle = time.Minute
)

type evidenceStore struct {
	dir string
	// mu serialises building: two requests just after a window closed must
	// not both make a "final" packet, and a loop of requests must not fill
	// the disk with provisional ones.
	mu sync.Mutex
}

// provisionalReuse is how long a provisional packet is served again
// instead of building a new one.
const provisionalReuse = 30 * time.Second

func openEvidence(dataDir string) (*evidenceStore, error) {
	dir := filepath.Join(dataDir, "evidence")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("evidence store: %w", err)
	}
	return &evidenceStore{dir: dir}, nil
}

var digestRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (e *evidenceStore) finalPath(alertID string) string {
	h := sha256.Sum256([]byte(alertID))
	return filepath.Join(e.dir, "final-"+hex.EncodeToString(h[:]))
}

// final returns the digest of alertID's final packet, if there is one.
func (e *evidenceStore) final(alertID string) (string, bool) {
	b, err := os.ReadFile(e.finalPath(alertID))
	d := strings.TrimSpace(string(b))
	return d, err == nil && digestRE.MatchString(d)
}

// put stores b under its digest (once) and returns the digest.
func (e *evidenceStore) put(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	d := hex.EncodeToString(sum[:])
	p := filepath.Join(e.dir, d+".json")
	if _, err := os.Stat(p); err == nil {
		return d, nil
	}
	if err := atomicfile.Write(p, b, 0o644); err != nil {
		return "", fmt.Errorf("store evidence: %w", err)
	}
	return d, nil
}

func (e *evidenceStore) provPath(alertID string) string {
	h := sha256.Sum256([]byte(alertID))
	return filepath.Join(e.dir, "prov-"+hex.EncodeToString(h[:]))
}

// provisional returns the digest of alertID's latest provisional packet
// and when it was built.
func (e *evidenceStore) provisional(alertID string) (string, time.Time, bool) {
	b, err := os.ReadFile(e.provPath(alertID))
	d, at, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	built, terr := time.Parse(time.RFC3339Nano, at)
	if err != nil || terr != nil || !digestRE.MatchString(d) {
		return "", time.Time{}, false
	}
	return d, built, true
}

// setProvisional records digest, built at built, as alertID's latest
// provisional packet and removes the one it replaces: only the latest of an
// open window is kept.
func (e *evidenceStore) setProvisional(alertID, digest string, built time.Time) error {
	if old, _, ok := e.provisional(alertID); ok && old != digest {
		os.Remove(filepath.Join(e.dir, old+".json"))
	}
	return atomicfile.Write(e.provPath(alertID), []byte(digest+" "+built.Format(time.RFC3339Nano)+"\n"), 0o644)
}

func (e *evidenceStore) markFinal(alertID, digest string) error {
	return atomicfile.Write(e.finalPath(alertID), []byte(digest+"\n"), 0o644)
}

func (e *evidenceStore) read(digest string) ([]byte, error) {
	if !digestRE.MatchString(digest) {
		return nil, os.ErrNotExist
	}
	return os.ReadFile(filepath.Join(e.dir, digest+".json"))
}

// packet is the evidence bundle (docs/console.md).
type packet struct {
	Format      string            `json:"format"`
	GeneratedAt time.Time         `json:"generated_at"`
	Final       bool              `json:"final"`
	Alert       packetAlert       `json:"alert"`
	Truck       map[string]any    `json:"truck"`
	Permit      map[string]any    `json:"permit"`
	Trip        *telemetry.Trip   `json:"trip"`
	Rule        packetRule        `json:"rule"`
	Window      map[string]string `json:"window"`
	Track       *fc               `json:"track"`
	Timeline    []timelineEntry   `json:"timeline"`
	Raw         []rawRecord       `json:"raw"`
	Note        string            `json:"history_note,omitempty"`
}

type packetAlert struct {
	alertSummary
	AckedAt    time.Time        `json:"acked_at,omitzero"`
	ResolvedBy string           `json:"resolved_by,omitempty"`
	ResolvedAt time.Time        `json:"resolved_at,omitzero"`
	EndedAt    time.Time        `json:"condition_ended_at,omitzero"`
	OutcomeBy  string           `json:"outcome_by,omitempty"`
	Notes      []alerting.Note  `json:"notes"`
	History    []alerting.Event `json:"history"`
}

type packetRule struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Thresholds map[string]any `json:"thresholds"`
	Measured   map[string]any `json:"measured"`
}

type timelineEntry struct {
	TS     time.Time `json:"ts"`
	Cover  string    `json:"cover"`
	Body   string    `json:"body"`
	LoadKg *float64  `json:"load_kg"`
}

// rawRecord is one stored point: measurement, tag, fields and time as in
// InfluxDB (docs/data-model.md).
type rawRecord struct {
	Measurement string         `json:"measurement"`
	Device      string         `json:"device"`
	Time        time.Time      `json:"time"`
	Fields      map[string]any `json:"fields"`
}

func rawOf(r *telemetry.Record) rawRecord {
	f := map[string]any{"seq": r.Seq, "late": r.Late, "delay_ms": r.Received.Sub(r.TS).Milliseconds()}
	switch r.Kind {
	case telemetry.KindGPS:
		f["lat"], f["lon"], f["speed_kmh"], f["heading"], f["sats"], f["valid"] = r.Fix.Lat, r.Fix.Lon, r.Fix.SpeedKmh, r.Fix.Heading, r.Fix.Sats, r.Fix.Valid
	case telemetry.KindSensors:
		f["cover"], f["body"] = r.Sensors.Cover.String(), r.Sensors.Body.String()
		if r.Sensors.HasLoad {
			f["load_kg"] = r.Sensors.LoadKg
		}
	}
	return rawRecord{Measurement: r.Kind.Measurement(), Device: r.Device, Time: r.TS, Fields: f}
}

// evidenceWindow is the span a packet covers and whether it has closed.
func evidenceWindow(a *alerting.Alert, now time.Time) (from, to time.Time, closed bool) {
	end := now
	switch {
	case !a.RuleResolvedAt.IsZero():
		end = a.RuleResolvedAt
	case a.State == alerting.StateResolved:
		end = a.ResolvedAt
	}
	if ruleBase(a.Rule) == "illegal_dumping" && end.After(a.UpdatedAt) && a.State != alerting.StateResolved {
		end = a.UpdatedAt // an event: it happened at once
	}
	end = minTime(end, a.StartedAt.Add(evidenceMaxSpan))
	from, to = a.StartedAt.Add(-evidenceMargin), end.Add(evidenceMargin)
	closed = !now.Before(to.Add(evidenceSettle))
	return from, minTime(to, now.Add(time.Second)), closed
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// handleEvidence serves GET /console/api/evidence/{id}: the packet, its
// digest and where to download exactly those bytes.
func (s *Server) handleEvidence(w http.ResponseWriter, r *http.Request) {
	a := s.visibleAlert(w, r)
	if a == nil {
		return
	}
	if a.Subject.Kind != telemetry.SubjectTruck {
		writeError(w, http.StatusNotFound, "evidence packets are for truck alerts")
		return
	}
	s.evidence.mu.Lock()
	defer s.evidence.mu.Unlock()
	var body []byte
	digest, final := s.evidence.final(a.ID)
	if final {
		var err error
		if body, err = s.evidence.read(digest); err != nil {
			final = false // the stored packet is gone: build it again
		} else {
			s.m.evidence.WithLabelValues("stored").Inc()
		}
	}
	if !final {
		if d, built, ok := s.evidence.provisional(a.ID); ok && s.now().Sub(built) < provisionalReuse {
			if _, _, closed := evidenceWindow(a, s.now()); !closed {
				if b, err := s.evidence.read(d); err == nil {
					writeJSON(w, http.StatusOK, map[string]any{"sha256": d, "size": len(b), "final": false,
						"url": "/console/api/evidence/" + urlPathEscape(a.ID) + "/bundle?sha256=" + d, "packet": json.RawMessage(b)})
					return
				}
			}
		}
		p, closed, err := s.buildPacket(r, a)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "evidence: "+err.Error())
			return
		}
		if body, err = json.MarshalIndent(p, "", "  "); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if digest, err = s.evidence.put(body); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if closed {
			if err := s.evidence.markFinal(a.ID, digest); err != nil {
				s.log.Error().Err(err).Str("alert", a.ID).Msg("evidence: mark final")
			}
			final = true
		} else if err := s.evidence.setProvisional(a.ID, digest, s.now()); err != nil {
			s.log.Error().Err(err).Str("alert", a.ID).Msg("evidence: record provisional")
		}
		s.m.evidence.WithLabelValues("built").Inc()
	}
	writeJSON(w, http.StatusOK, map[string]any{"sha256": digest, "size": len(body), "final": final,
		"url":    "/console/api/evidence/" + urlPathEscape(a.ID) + "/bundle?sha256=" + digest,
		"packet": json.RawMessage(body)})
}

// handleBundle serves the stored bytes of one packet of the alert.
func (s *Server) handleBundle(w http.ResponseWriter, r *http.Request) {
	a := s.visibleAlert(w, r)
	if a == nil {
		return
	}
	digest := r.URL.Query().Get("sha256")
	if digest == "" {
		var ok bool
		if digest, ok = s.evidence.final(a.ID); !ok {
			writeError(w, http.StatusNotFound, "no final packet yet: open the evidence page first")
			return
		}
	}
	body, err := s.evidence.read(digest)
	if err != nil {
		writeError(w, http.StatusNotFound, "no packet "+digest)
		return
	}
	var head struct {
		Alert struct {
			ID string `json:"id"`
		} `json:"alert"`
	}
	if json.Unmarshal(body, &head) != nil || head.Alert.ID != a.ID {
		writeError(w, http.StatusNotFound, "no packet "+digest+" for this alert")
		return
	}
	name := fmt.Sprintf("evidence-%s-%s.json", strings.NewReplacer("·", "", "/", "-").Replace(a.Subject.ID),
		a.StartedAt.In(s.city.Load().Location).Format("20060102-150405"))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", "attachment; filename=\"evidence.json\"; filename*=UTF-8''"+urlPathEscape(name))
	w.Header().Set("X-Content-SHA256", digest)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

func (s *Server) buildPacket(r *http.Request, a *alerting.Alert) (*packet, bool, error) {
	c := s.city.Load()
	now := s.now()
	from, to, closed := evidenceWindow(a, now)
	p := &packet{Format: evidenceFormat, GeneratedAt: now, Final: closed,
		Window:   map[string]string{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)},
		Track:    newFC(),
		Timeline: []timelineEntry{}, Raw: []rawRecord{}}
	p.Alert = packetAlert{alertSummary: s.summary(a, nil), AckedAt: a.AckedAt, ResolvedBy: a.ResolvedBy,
		ResolvedAt: a.ResolvedAt, EndedAt: a.RuleResolvedAt, OutcomeBy: a.OutcomeBy, Notes: a.Notes, History: a.History}
	if p.Alert.Notes == nil {
		p.Alert.Notes = []alerting.Note{}
	}
	truck := c.Truck(a.Subject.ID)
	p.Truck = map[string]any{"plate": a.Subject.ID, "company": a.Subject.Company, "company_name": a.Subject.CompanyName}
	var devices []string
	if truck != nil {
		devices = truck.Devices
		p.Truck["devices"] = devices
		if co := c.Company(truck.Company); co != nil {
			p.Truck["company_name"] = co.Name
		}
		p.Permit = s.permitView(c, truck.Plate, a.StartedAt)
	} else if a.Subject.Device != "" {
		devices = []string{a.Subject.Device}
	}
	p.Rule = packetRule{ID: a.Rule, Name: ruleNames[ruleBase(a.Rule)], Thresholds: thresholds(c, a, p.Permit), Measured: a.Details}
	if p.Rule.Measured == nil {
		p.Rule.Measured = map[string]any{}
	}
	var err error
	if p.Trip, err = s.trips.at(a.Subject.ID, a.StartedAt); err != nil {
		s.log.Warn().Err(err).Msg("evidence: trip")
	}
	if p.Trip != nil {
		p.Trip.Violations = s.violations(p.Trip, now)
	}
	if s.o.History == nil {
		p.Note = "no stored history: InfluxDB is not configured"
		closed = false
	} else if len(devices) > 0 {
		recs, err := s.o.History.Records(r.Context(), devices, []telemetry.Kind{telemetry.KindGPS, telemetry.KindSensors}, from, to)
		if err != nil {
			return nil, false, fmt.Errorf("read stored history: %w", err)
		}
		var line orb.LineString
		for i := range recs {
			rec := &recs[i]
			p.Raw = append(p.Raw, rawOf(rec))
			switch rec.Kind {
			case telemetry.KindGPS:
				if !rec.Fix.Valid {
					continue
				}
				pt := orb.Point{rec.Fix.Lon, rec.Fix.Lat}
				line = append(line, pt)
				p.Track.add(pt, map[string]any{"ts": rec.TS, "speed_kmh": rec.Fix.SpeedKmh, "heading": rec.Fix.Heading, "sats": rec.Fix.Sats})
			case telemetry.KindSensors:
				e := timelineEntry{TS: rec.TS, Cover: rec.Sensors.Cover.String(), Body: rec.Sensors.Body.String()}
				if rec.Sensors.HasLoad {
					kg := rec.Sensors.LoadKg
					e.LoadKg = &kg
				}
				p.Timeline = append(p.Timeline, e)
			}
		}
		if len(line) >= 2 {
			p.Track.Features = append([]*feature{{Type: "Feature", Geometry: geometry{"LineString", points(line)},
				Properties: map[string]any{"kind": "track", "from": from, "to": to, "fixes": len(line)}}}, p.Track.Features...)
		}
	}
	if a.Location.Lat != 0 || a.Location.Lon != 0 {
		p.Track.add(orb.Point{a.Location.Lon, a.Location.Lat}, map[string]any{"kind": "alert", "rule": a.Rule, "ts": a.StartedAt})
	}
	p.Final = closed
	return p, closed, nil
}

// violations are the ids of the truck alerts that began during tr.
func (s *Server) violations(tr *telemetry.Trip, now time.Time) []string {
	end := tr.ArrivedAt
	if end.IsZero() {
		end = now
	}
	var out []string
	for _, a := range s.o.Alerts.Select(alerting.Filter{Subject: tr.Plate, Since: tr.DepartedAt}) {
		if !a.StartedAt.Before(tr.DepartedAt) && !a.StartedAt.After(end) {
			out = append(out, a.ID)
		}
	}
	return out
}

// thresholds are the rule's settings the alert was judged against.
func thresholds(c *config.City, a *alerting.Alert, permit map[string]any) map[string]any {
	r := &c.Rules
	secs := func(d time.Duration) float64 { return d.Seconds() }
	switch ruleBase(a.Rule) {
	case "uncovered_load":
		u := r.UncoveredLoad
		return map[string]any{"loaded_kg": u.LoadedKg, "min_speed_kmh": u.MinSpeedKmh, "dwell_s": secs(u.Dwell), "clear_after_s": secs(u.ClearAfter)}
	case "off_route":
		o := r.OffRoute
		corridor := o.CorridorM
		if permit != nil {
			if cm, ok := permit["corridor_m"].(float64); ok {
				corridor = cm
			}
		}
		return map[string]any{"corridor_m": corridor, "min_speed_kmh": o.MinSpeedKmh, "dwell_s": secs(o.Dwell), "clear_after_s": secs(o.ClearAfter)}
	case "illegal_dumping":
		d := r.IllegalDumping
		return map[string]any{"raised_for_s": secs(d.RaisedFor), "load_drop_pct": d.LoadDropPct, "load_drop_within_s": secs(d.LoadDropWithin), "max_speed_kmh": d.MaxSpeedKmh}
	case "outside_permit_hours":
		m := r.OutsidePermitHours
		return map[string]any{"min_speed_kmh": m.MinSpeedKmh, "dwell_s": secs(m.Dwell)}
	case "no_permit":
		m := r.NoPermit
		return map[string]any{"min_speed_kmh": m.MinSpeedKmh, "dwell_s": secs(m.Dwell)}
	case "signal_lost":
		return map[string]any{"after_s": secs(r.SignalLost.After)}
	case "zone_violation":
		return map[string]any{"dwell_s": secs(r.ZoneViolation.Dwell), "clear_after_s": secs(r.ZoneViolation.ClearAfter)}
	case "overload":
		o := r.Overload
		m := map[string]any{"tolerance_pct": o.TolerancePct, "min_speed_kmh": o.MinSpeedKmh, "dwell_s": secs(o.Dwell), "clear_after_s": secs(o.ClearAfter)}
		if t := c.Truck(a.Subject.ID); t != nil {
			m["rated_load_kg"] = t.RatedLoadKg
		}
		return m
	case "unwashed_exit":
		return map[string]any{"min_wash_s": secs(r.UnwashedExit.MinWash)}
	case "spillage":
		sp := r.Spillage
		return map[string]any{"drop_pct": sp.DropPct, "within_s": secs(sp.Within), "min_speed_kmh": sp.MinSpeedKmh}
	}
	return map[string]any{}
}
