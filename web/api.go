package web

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// trackWindow is how much of a truck's recent track its page shows.
const trackWindow = 30 * time.Minute

func itoa(n int) string { return strconv.Itoa(n) }

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r)
	lang := id.Lang
	if c, err := r.Cookie("uw_lang"); err == nil && (c.Value == "en" || c.Value == "zh-CN") {
		lang = c.Value
	}
	if lang == "" {
		lang = "zh-CN"
	}
	var companyName string
	if c := s.city.Load().Company(id.Company); c != nil {
		companyName = c.Name
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": id.Name, "name": id.Display, "role": id.Role,
		"company": id.Company, "company_name": companyName, "csrf": id.csrf, "lang": lang, "home": homeOf(id.Role)})
}

// scopeOf is the company whose trucks id is limited to ("" for all).
func scopeOf(id *identity) string {
	if id.Role == config.RoleCompany {
		return id.Company
	}
	return ""
}

// handleCity serves the map's background: districts, sites and routes, a
// company user's limited to its own trucks' permits.
func (s *Server) handleCity(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r)
	scope := scopeOf(id)
	if id.Role == config.RoleDuty {
		scope = "\x00duty" // districts only
	}
	s.cityMu.Lock()
	b, ok := s.cityJSON[scope]
	s.cityMu.Unlock()
	if !ok {
		var err error
		if b, err = json.Marshal(s.cityView(scope)); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		s.cityMu.Lock()
		s.cityJSON[scope] = b
		s.cityMu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func (s *Server) cityView(scope string) map[string]any {
	c := s.city.Load()
	districts := newFC()
	for _, d := range c.Districts {
		districts.add(d.Area, map[string]any{"name": d.Name, "adcode": d.Adcode})
	}
	sites, routes := newFC(), newFC()
	var companies []map[string]string
	center := cityCenter(c)
	if scope != "\x00duty" {
		siteIDs, routeIDs := map[string]bool{}, map[string]bool{}
		corridor := map[string]float64{}
		for _, p := range c.Permits {
			t := c.Truck(p.Truck)
			if t == nil || (scope != "" && t.Company != scope) {
				continue
			}
			for _, id := range append(slices.Clone(p.Origins), p.Disposal...) {
				siteIDs[id] = true
			}
			for _, id := range p.Routes {
				routeIDs[id] = true
				corridor[id] = max(corridor[id], s.corridorOf(c, &p))
			}
		}
		for i := range c.Sites {
			st := &c.Sites[i]
			if scope == "" || siteIDs[st.ID] {
				sites.add(st.Area, map[string]any{"id": st.ID, "name": st.Name, "kind": st.Kind, "district": st.District})
			}
		}
		for i := range c.Routes {
			rt := &c.Routes[i]
			if scope == "" || routeIDs[rt.ID] {
				cm := corridor[rt.ID]
				if cm == 0 {
					cm = c.Rules.OffRoute.CorridorM
				}
				routes.add(rt.Path, map[string]any{"id": rt.ID, "name": rt.Name, "corridor_m": cm})
			}
		}
		for _, co := range c.Companies {
			if scope == "" || co.ID == scope {
				companies = append(companies, map[string]string{"id": co.ID, "name": co.Name})
			}
		}
	}
	return map[string]any{"name": c.Name, "center": center, "time_zone": c.Location.String(), "tile_url": s.o.TileURL,
		"districts": districts, "sites": sites, "routes": routes, "companies": companies}
}

func (s *Server) corridorOf(c *config.City, p *config.Permit) float64 {
	if p.CorridorM > 0 {
		return p.CorridorM
	}
	return c.Rules.OffRoute.CorridorM
}

// cityCenter is where the map opens: the middle of what the city has.
func cityCenter(c *config.City) [2]float64 {
	var b orb.Bound
	first := true
	grow := func(g orb.Geometry) {
		if first {
			b, first = g.Bound(), false
		} else {
			b = b.Union(g.Bound())
		}
	}
	for _, d := range c.Districts {
		grow(d.Area)
	}
	for _, st := range c.Sites {
		grow(st.Area)
	}
	for _, g := range c.Gauges {
		grow(orb.Point{g.Lon, g.Lat})
	}
	if first {
		return [2]float64{36.7069, 119.1619} // Weifang
	}
	ctr := b.Center()
	return [2]float64{ctr.Lat(), ctr.Lon()}
}

func (s *Server) handleTrucks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"trucks": s.fleet.trucksOf(scopeOf(identityOf(r)))})
}

// visibleTruck returns the truck of the request's {plate} if id may see it.
func (s *Server) visibleTruck(w http.ResponseWriter, r *http.Request) (truckView, bool) {
	id := identityOf(r)
	v, ok := s.fleet.truck(r.PathValue("plate"))
	if ok && scopeOf(id) != "" && v.Company != scopeOf(id) {
		s.m.denied.WithLabelValues("scope").Inc()
		ok = false // not theirs: as if it did not exist
	}
	if !ok {
		writeError(w, http.StatusNotFound, "no truck "+r.PathValue("plate"))
	}
	return v, ok
}

func (s *Server) handleTruck(w http.ResponseWriter, r *http.Request) {
	v, ok := s.visibleTruck(w, r)
	if !ok {
		return
	}
	c := s.city.Load()
	now := s.now()
	out := map[string]any{"truck": v, "permit": s.permitView(c, v.Plate, now)}
	track := [][4]float64{}
	var trackErr string
	if s.o.History == nil {
		trackErr = "no stored history (InfluxDB not configured)"
	} else if t := c.Truck(v.Plate); t != nil {
		recs, err := s.o.History.Records(r.Context(), t.Devices, []telemetry.Kind{telemetry.KindGPS}, now.Add(-trackWindow), now.Add(time.Second))
		if err != nil {
			trackErr = "stored history unavailable: " + err.Error()
			s.log.Warn().Err(err).Str("plate", v.Plate).Msg("console: truck track")
		}
		for i := range recs {
			f := &recs[i].Fix
			if f.Valid {
				track = append(track, [4]float64{round6(f.Lat), round6(f.Lon), float64(recs[i].TS.Unix()), f.SpeedKmh})
			}
		}
	}
	out["track"] = track
	if trackErr != "" {
		out["track_error"] = trackErr
	}
	alerts := s.o.Alerts.Select(alerting.Filter{Subject: v.Plate, Since: now.Add(-24 * time.Hour)})
	// A plate that moved between companies: the alerts of its time with the
	// other company are not this user's.
	alerts = slices.DeleteFunc(alerts, func(a *alerting.Alert) bool { return !mayAlert(identityOf(r), a) })
	sortAlerts(alerts)
	sums := make([]alertSummary, 0, len(alerts))
	for _, a := range alerts {
		sums = append(sums, s.summary(a, nil))
	}
	out["alerts"] = sums
	writeJSON(w, http.StatusOK, out)
}

// permitView is the permit of plate in force at now (valid today), or
// nil; with several, the one whose window is open.
func (s *Server) permitView(c *config.City, plate string, now time.Time) map[string]any {
	var best *config.Permit
	bestOpen := false
	for _, p := range c.PermitsOf(plate) {
		valid, open := p.Check(now, c.Location)
		if !valid {
			continue
		}
		if best == nil || open && !bestOpen {
			best, bestOpen = p, open
		}
	}
	if best == nil {
		return nil
	}
	return s.permitJSON(c, best, now)
}

func (s *Server) permitJSON(c *config.City, p *config.Permit, now time.Time) map[string]any {
	windows := make([]string, len(p.Windows))
	for i, w := range p.Windows {
		windows[i] = w.String()
	}
	named := func(ids []string) []map[string]string {
		out := []map[string]string{}
		for _, id := range ids {
			name := id
			if st := c.Site(id); st != nil {
				name = st.Name
			}
			out = append(out, map[string]string{"id": id, "name": name})
		}
		return out
	}
	routes, sites := newFC(), newFC()
	for _, id := range p.Routes {
		if rt := c.Route(id); rt != nil {
			routes.add(rt.Path, map[string]any{"id": rt.ID, "name": rt.Name, "corridor_m": s.corridorOf(c, p)})
		}
	}
	for _, id := range append(slices.Clone(p.Origins), p.Disposal...) {
		if st := c.Site(id); st != nil {
			sites.add(st.Area, map[string]any{"id": st.ID, "name": st.Name, "kind": st.Kind})
		}
	}
	valid, open := p.Check(now, c.Location)
	return map[string]any{"id": p.ID, "valid_from": p.ValidFrom.String(), "valid_to": p.ValidTo.String(),
		"windows": windows, "in_force": valid, "window_open": open,
		"corridor_m": s.corridorOf(c, p), "origins": named(p.Origins), "disposal": named(p.Disposal),
		"routes": routes, "sites": sites}
}

// alertSummary is an alert in a list or the stream (docs/console.md).
type alertSummary struct {
	ID        string             `json:"id"`
	Rule      string             `json:"rule"`
	RuleName  string             `json:"rule_name"`
	Severity  string             `json:"severity"`
	State     alerting.State     `json:"state"`
	Subject   telemetry.Subject  `json:"subject"`
	StartedAt time.Time          `json:"started_at"`
	UpdatedAt time.Time          `json:"updated_at"`
	OpenedAt  time.Time          `json:"opened_at"`
	Location  telemetry.Location `json:"location"`
	Details   map[string]any     `json:"details,omitempty"`
	Tier      int                `json:"tier"`
	AckedBy   string             `json:"acked_by,omitempty"`
	Outcome   alerting.Outcome   `json:"outcome,omitempty"`
	Distance  *float64           `json:"distance_m,omitempty"`
}

// ruleNames are the rules' names on the console, zh-CN.
var ruleNames = map[string]string{
	"uncovered_load": "未密闭运输", "off_route": "偏离路线", "illegal_dumping": "违规倾倒",
	"outside_permit_hours": "超时段运输", "no_permit": "无证运输", "signal_lost": "信号中断",
	"zone_violation": "管控区违规", "rainstorm": "暴雨预警", "heavy_rain_1h": "短时强降水",
	"waterlogging": "内涝积水", "sensor_offline": "设备离线",
	"overload": "超量装载", "unwashed_exit": "带泥上路", "spillage": "道路抛洒",
}

func ruleBase(rule string) string {
	base, _, _ := strings.Cut(rule, ":")
	return base
}

func (s *Server) summary(a *alerting.Alert, near *orb.Point) alertSummary {
	out := alertSummary{ID: a.ID, Rule: a.Rule, RuleName: ruleNames[ruleBase(a.Rule)], Severity: a.Severity,
		State: a.State, Subject: a.Subject, StartedAt: a.StartedAt, UpdatedAt: a.UpdatedAt, OpenedAt: a.OpenedAt,
		Location: a.Location, Details: a.Details, Tier: a.Tier, AckedBy: a.AckedBy, Outcome: a.Outcome}
	if zn, ok := a.Details["zone_name"].(string); ok && ruleBase(a.Rule) == "zone_violation" {
		out.RuleName += "：" + zn
	}
	if near != nil && (a.Location.Lat != 0 || a.Location.Lon != 0) {
		d := geo.Distance(*near, orb.Point{a.Location.Lon, a.Location.Lat})
		d = float64(int(d + 0.5))
		out.Distance = &d
	}
	return out
}

func severityRank(s string) int {
	switch s {
	case "critical":
		return 4
	case "major":
		return 3
	case "warning":
		return 2
	case "minor":
		return 1
	}
	return 0
}

// sortAlerts orders by severity (critical first), then most recently
// started.
func sortAlerts(as []*alerting.Alert) {
	slices.SortFunc(as, func(a, b *alerting.Alert) int {
		if d := severityRank(b.Severity) - severityRank(a.Severity); d != 0 {
			return d
		}
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// handleAlerts lists the alerts the user may see: state active (default),
// firing, acknowledged or resolved; kind truck or gauge; near lat,lon.
func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r)
	q := r.URL.Query()
	f := alerting.Filter{}
	active := false
	switch st := q.Get("state"); st {
	case "", "active":
		active = true
	case string(alerting.StateFiring), string(alerting.StateAcknowledged), string(alerting.StateResolved):
		f.State = alerting.State(st)
		if f.State == alerting.StateResolved {
			f.Since = s.now().Add(-7 * 24 * time.Hour)
		}
	default:
		writeError(w, http.StatusBadRequest, "state "+st+": want active, firing, acknowledged or resolved")
		return
	}
	kind := q.Get("kind")
	if kind != "" && kind != "truck" && kind != "gauge" {
		writeError(w, http.StatusBadRequest, "kind "+kind+": want truck or gauge")
		return
	}
	if scope := scopeOf(id); scope != "" {
		f.Company = scope
	}
	limit := 200
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 2000 {
			writeError(w, http.StatusBadRequest, "limit "+v+": want 1 to 2000")
			return
		}
		limit = n
	}
	var near *orb.Point
	if v := q.Get("near"); v != "" {
		lat, lon, ok := parseLatLon(v)
		if !ok {
			writeError(w, http.StatusBadRequest, "near "+v+": want lat,lon in degrees")
			return
		}
		near = &orb.Point{lon, lat}
	}
	all := s.o.Alerts.Select(f)
	alerts := all[:0]
	for _, a := range all {
		if (active && a.State == alerting.StateResolved) || (kind != "" && string(a.Subject.Kind) != kind) || !mayAlert(id, a) {
			continue
		}
		alerts = append(alerts, a)
	}
	sortAlerts(alerts)
	out := make([]alertSummary, 0, min(limit, len(alerts)))
	for _, a := range alerts {
		out = append(out, s.summary(a, near))
	}
	if near != nil {
		slices.SortStableFunc(out, func(a, b alertSummary) int {
			da, db := distOr(a.Distance), distOr(b.Distance)
			switch {
			case da < db:
				return -1
			case da > db:
				return 1
			}
			return 0
		})
	}
	total := len(out)
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "alerts": out[:min(limit, total)]})
}

func distOr(d *float64) float64 {
	if d == nil {
		return 1e12
	}
	return *d
}

func parseLatLon(v string) (lat, lon float64, ok bool) {
	a, b, found := strings.Cut(v, ",")
	if !found {
		return 0, 0, false
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	return lat, lon, err1 == nil && err2 == nil && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// visibleAlert fetches the alert of the request's {id} if the user may see
// it; anything else is 404, as if it did not exist.
func (s *Server) visibleAlert(w http.ResponseWriter, r *http.Request) *alerting.Alert {
	a, err := s.o.Alerts.Get(r.PathValue("id"))
	if err == nil && !mayAlert(identityOf(r), a) {
		s.m.denied.WithLabelValues("scope").Inc()
		err = alerting.ErrNotFound
	}
	if err != nil {
		writeError(w, http.StatusNotFound, "no alert "+r.PathValue("id"))
		return nil
	}
	return a
}

// alertDetail is one alert with everything the alert page shows.
func (s *Server) alertDetail(a *alerting.Alert) map[string]any {
	type capLink struct {
		Identifier string    `json:"identifier"`
		MsgType    string    `json:"msg_type"`
		Sent       time.Time `json:"sent"`
		Headline   string    `json:"headline"`
		URL        string    `json:"url"`
	}
	caps := []capLink{}
	for _, c := range a.CAP {
		caps = append(caps, capLink{c.Identifier, c.MsgType, c.Sent, c.Headline, capURL(c.Identifier)})
	}
	notes := a.Notes
	if notes == nil {
		notes = []alerting.Note{}
	}
	ns := []alerting.Notification{}
	for _, n := range a.Notifications {
		if n.Channel == alerting.ChannelSMS {
			ns = append(ns, n)
		}
	}
	return map[string]any{"alert": s.summary(a, nil), "history": a.History, "notes": notes, "notifications": ns,
		"cap": caps, "outcome": a.Outcome, "outcome_by": a.OutcomeBy, "outcome_at": a.OutcomeAt,
		"acked_at": a.AckedAt, "resolved_by": a.ResolvedBy, "resolved_at": a.ResolvedAt, "reopened": a.Reopened,
		"outcomes": alerting.Outcomes}
}

func capURL(identifier string) string {
	return "/cap/" + strings.ReplaceAll(urlPathEscape(identifier), "%2F", "/") + ".xml"
}

func (s *Server) handleAlert(w http.ResponseWriter, r *http.Request) {
	if a := s.visibleAlert(w, r); a != nil {
		writeJSON(w, http.StatusOK, s.alertDetail(a))
	}
}

// handleAction acknowledges, resolves, notes or records the outcome of an
// alert, as the signed-in user.
func (s *Server) handleAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := s.visibleAlert(w, r) // who may see an alert may act on it (docs/console.md)
		if a == nil {
			return
		}
		id := identityOf(r)
		var body struct {
			Note    string `json:"note"`
			Text    string `json:"text"`
			Outcome string `json:"outcome"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "body: want JSON: "+err.Error())
			return
		}
		note := strings.TrimSpace(body.Note)
		if len([]rune(note)) > 2000 || len([]rune(body.Text)) > 2000 {
			writeError(w, http.StatusBadRequest, "note: at most 2000 characters")
			return
		}
		var err error
		switch action {
		case "ack":
			a, err = s.o.Alerts.Acknowledge(a.ID, id.actor(), note)
		case "resolve":
			if note == "" {
				writeError(w, http.StatusBadRequest, "note: say why it is resolved / 请填写解除原因")
				return
			}
			a, err = s.o.Alerts.Resolve(a.ID, id.actor(), note)
		case "note":
			text := strings.TrimSpace(body.Text)
			if text == "" {
				text = note
			}
			if text == "" {
				writeError(w, http.StatusBadRequest, "text: the note is empty / 备注为空")
				return
			}
			a, err = s.o.Alerts.AddNote(a.ID, id.actor(), text)
		case "outcome":
			o := alerting.Outcome(body.Outcome)
			if !slices.Contains(alerting.Outcomes, o) {
				writeError(w, http.StatusBadRequest, "outcome "+body.Outcome+": want warned, fined, permit_suspended or false_alarm")
				return
			}
			a, err = s.o.Alerts.SetOutcome(a.ID, id.actor(), o, note)
		}
		switch {
		case errors.Is(err, alerting.ErrConflict):
			writeError(w, http.StatusConflict, err.Error())
		case errors.Is(err, alerting.ErrNotFound):
			writeError(w, http.StatusNotFound, err.Error())
		case err != nil:
			writeError(w, http.StatusInternalServerError, err.Error())
		default:
			s.log.Info().Str("user", id.Name).Str("alert", a.ID).Str("action", action).Msg("console action")
			writeJSON(w, http.StatusOK, s.alertDetail(a))
		}
	}
}

// syncAlerts reads every active alert again: the map's alerting trucks
// and the gauges' levels.
func (s *Server) syncAlerts() {
	active := s.o.Alerts.Select(alerting.Filter{})
	levels := map[string]string{}
	for _, a := range active {
		if a.State == alerting.StateResolved {
			continue
		}
		if a.Subject.Kind == telemetry.SubjectTruck {
			s.fleet.setAlert(a.ID, a.Subject.ID, true)
		} else if lv := gaugeLevelOf(a); lv != "" {
			levels[a.Subject.ID] = maxLevel(levels[a.Subject.ID], lv)
		}
	}
	s.fleet.retainAlerts(func(id string) bool {
		a, err := s.o.Alerts.Get(id)
		return err == nil && a.State != alerting.StateResolved
	})
	s.levelsMu.Lock()
	s.levels = levels
	s.levelsMu.Unlock()
}

// alertChanged applies one alert's change to the map and levels and
// streams it to those who may see it.
func (s *Server) alertChanged(id string) {
	a, err := s.o.Alerts.Get(id)
	if err != nil {
		return
	}
	active := a.State != alerting.StateResolved
	switch a.Subject.Kind {
	case telemetry.SubjectTruck:
		s.fleet.setAlert(a.ID, a.Subject.ID, active)
	default:
		if gaugeLevelOf(a) != "" || ruleBase(a.Rule) == "rainstorm" || ruleBase(a.Rule) == "waterlogging" {
			s.refreshLevel(a.Subject.ID)
		}
	}
	s.hub.broadcastAlert(a, s)
}

// refreshLevel recomputes one gauge's level from its active alerts.
func (s *Server) refreshLevel(device string) {
	lv := ""
	for _, a := range s.o.Alerts.Select(alerting.Filter{Subject: device}) {
		if a.State != alerting.StateResolved {
			lv = maxLevel(lv, gaugeLevelOf(a))
		}
	}
	s.levelsMu.Lock()
	if lv == "" {
		delete(s.levels, device)
	} else {
		s.levels[device] = lv
	}
	s.levelsMu.Unlock()
	s.fleet.touchGauge(device)
}

// gaugeLevelOf is the level a rainstorm or waterlogging alert holds.
func gaugeLevelOf(a *alerting.Alert) string {
	switch ruleBase(a.Rule) {
	case "rainstorm", "waterlogging":
		lv, _ := a.Details["level"].(string)
		return lv
	}
	return ""
}

var levelRank = map[string]int{"": 0, "none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4, "warning": 1, "road_closure": 2}

func maxLevel(a, b string) string {
	if levelRank[b] > levelRank[a] {
		return b
	}
	return a
}

// gaugeLevel is the level in force at a gauge, "none" without one.
func (s *Server) gaugeLevel(device string) string {
	s.levelsMu.Lock()
	defer s.levelsMu.Unlock()
	if lv := s.levels[device]; lv != "" {
		return lv
	}
	return "none"
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
