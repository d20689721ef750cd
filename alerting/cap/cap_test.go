package cap_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/alerting/cap"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

var (
	weifang = cap.Profile{
		Sender:     "urbanwatch@370700",
		SenderName: "潍坊市城市管理局",
		RegionCode: "370700",
		Web:        "https://uw.example.cn/",
	}
	// 21:31:05.250 in Weifang; the alert's ts is in UTC as the engine writes it.
	t0         = time.Date(2026, 7, 24, 13, 31, 5, 250e6, time.UTC)
	gaugeAt    = telemetry.Location{Lat: 36.7085, Lon: 119.1621}
	underpass  = telemetry.Location{Lat: 36.7192, Lon: 119.1023}
	identifier = regexp.MustCompile(`^370700-UW-\d{14}-\d{6}$`)
	// one reference: sender,identifier,sent with an explicit +08:00 offset.
	refPattern = `urbanwatch@370700,370700-UW-\d{14}-\d{6},\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00`
)

func rainAlert(state telemetry.AlertState, version int, severity string, ts time.Time, details map[string]any) *telemetry.Alert {
	started := t0
	return &telemetry.Alert{
		ID:        telemetry.AlertID("rainstorm", "wf-rg-001", started),
		Rule:      "rainstorm",
		State:     state,
		Version:   version,
		Severity:  severity,
		Subject:   telemetry.Subject{Kind: telemetry.SubjectGauge, ID: "wf-rg-001", Name: "东风街雨量站", District: "奎文区", Device: "wf-rg-001"},
		StartedAt: started,
		TS:        ts,
		Location:  gaugeAt,
		Details:   details,
	}
}

func waterAlert(state telemetry.AlertState, version int, severity string, ts time.Time, details map[string]any) *telemetry.Alert {
	return &telemetry.Alert{
		ID:        telemetry.AlertID("waterlogging", "wf-dp-003", t0),
		Rule:      "waterlogging",
		State:     state,
		Version:   version,
		Severity:  severity,
		Subject:   telemetry.Subject{Kind: telemetry.SubjectGauge, ID: "wf-dp-003", Name: "胜利街下穿立交", District: "潍城区", Device: "wf-dp-003"},
		StartedAt: t0,
		TS:        ts,
		Location:  underpass,
		Details:   details,
	}
}

func compose(t *testing.T, a *telemetry.Alert, prev []cap.Ref, seq uint64, area cap.Area) *cap.Message {
	t.Helper()
	m, err := cap.Compose(weifang, a, prev, seq, area)
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	return m
}

func value(t *testing.T, kvs []cap.NameValue, name string) string {
	t.Helper()
	for _, kv := range kvs {
		if kv.Name == name {
			return kv.Value
		}
	}
	t.Fatalf("no %q in %v", name, kvs)
	return ""
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
}

func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// checkEnvelope checks what every message shares: identifier, sender,
// sent in +08:00, status, scope, msgType and references.
func checkEnvelope(t *testing.T, doc []byte, m *cap.Message, msgType string, ts time.Time, refs []*cap.Message) {
	t.Helper()
	if !identifier.MatchString(m.Identifier) {
		t.Errorf("identifier %q does not match %v", m.Identifier, identifier)
	}
	equal(t, "sender", m.Sender, weifang.Sender)
	equal(t, "status", m.Status, "Actual")
	equal(t, "scope", m.Scope, "Public")
	equal(t, "msgType", m.MsgType, msgType)
	want := ts.Truncate(time.Second)
	if !m.Sent.Equal(want) {
		t.Errorf("sent = %v, want %v", m.Sent, want)
	}
	if _, off := m.Sent.Zone(); off != 8*3600 {
		t.Errorf("sent offset %ds, want +08:00", off)
	}
	wantSent := want.In(time.FixedZone("", 8*3600)).Format("2006-01-02T15:04:05") + "+08:00"
	contains(t, "document", string(doc), "<sent>"+wantSent+"</sent>", `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">`)
	if regexp.MustCompile(`T\d\d:\d\d:\d\d(\.\d+)?Z<`).Match(doc) {
		t.Errorf("a time is written with Z:\n%s", doc)
	}
	if len(m.References) != len(refs) {
		t.Fatalf("%d references, want %d: %v", len(m.References), len(refs), m.References)
	}
	var raw []string
	for i, r := range refs {
		got := m.References[i]
		if got.Sender != r.Sender || got.Identifier != r.Identifier || !got.Sent.Equal(r.Sent) {
			t.Errorf("reference %d = %v, want %v", i+1, got, cap.RefTo(r))
		}
		raw = append(raw, refPattern)
	}
	if len(refs) > 0 {
		re := regexp.MustCompile(`<references>` + strings.Join(raw, " ") + `</references>`)
		if !re.Match(doc) {
			t.Errorf("references not written as space-separated sender,identifier,sent:\n%s", doc)
		}
		if !strings.Contains(string(doc), cap.RefTo(refs[0]).String()) {
			t.Errorf("document lacks reference %s", cap.RefTo(refs[0]))
		}
	} else if strings.Contains(string(doc), "<references>") {
		t.Errorf("an Alert has references:\n%s", doc)
	}
}

// checkArea checks the one area: the region geocode present once, the
// polygons closed, and, with no geometry given, the default circle.
func checkArea(t *testing.T, in cap.Info, center telemetry.Location, radiusKM float64) cap.Area {
	t.Helper()
	if len(in.Areas) != 1 {
		t.Fatalf("%d areas, want 1", len(in.Areas))
	}
	a := in.Areas[0]
	n := 0
	for _, g := range a.Geocodes {
		if g == (cap.Geocode{Name: "GB/T 2260", Value: "370700"}) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("region geocode appears %d times in %v, want once", n, a.Geocodes)
	}
	for i, ring := range a.Polygons {
		if len(ring) < 4 || ring[0] != ring[len(ring)-1] {
			t.Errorf("polygon %d not closed: %v", i+1, ring)
		}
	}
	if radiusKM > 0 {
		want := []cap.Circle{{Center: center, RadiusKM: radiusKM}}
		if !slices.Equal(a.Circles, want) || len(a.Polygons) != 0 {
			t.Errorf("area %+v, want only circle %v", a, want)
		}
	}
	return a
}

func TestIdentifier(t *testing.T) {
	sent := time.Date(2026, 11, 24, 13, 31, 5, 0, time.UTC)
	equal(t, "identifier", cap.Identifier("370700", sent, 42), "370700-UW-20261124213105-000042")
	equal(t, "identifier across midnight", cap.Identifier("370700", time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC), 1),
		"370700-UW-20261125000000-000001")
	equal(t, "identifier in another zone", cap.Identifier("370700", sent.In(time.FixedZone("", -5*3600)), 42),
		"370700-UW-20261124213105-000042")
	equal(t, "large seq", cap.Identifier("370700", sent, 1234567), "370700-UW-20261124213105-1234567")
	if cap.Identifier("370700", sent, 1) == cap.Identifier("370700", sent, 2) ||
		cap.Identifier("370700", sent, 1) == cap.Identifier("370700", sent.Add(time.Second), 1) ||
		cap.Identifier("370700", sent, 1) == cap.Identifier("370705", sent, 1) {
		t.Error("identifiers collide")
	}
}

// TestRainstormRaised raises a rainstorm warning at each CMA colour.
func TestRainstormRaised(t *testing.T) {
	for _, tc := range []struct {
		level, severity string
		details         map[string]any
		event, headline string
		urgency, sev    string
		response        []string
		expires         time.Duration
		guide           string
		params          map[string]string
	}{{
		level: "blue", severity: "minor",
		// ints, as a JSON decoder into an int-typed struct or a hand-written
		// detail map would give.
		details: map[string]any{"level": "blue", "previous_level": "", "change": "raised",
			"blue_mm": 55, "yellow_mm": 41, "orange_mm": 28, "red_mm": 28, "threshold_mm": 50, "window_h": 12},
		event: "暴雨蓝色预警", headline: "奎文区东风街雨量站暴雨蓝色预警：12小时降雨55毫米",
		urgency: "Expected", sev: "Minor", response: []string{"Prepare", "Monitor"}, expires: 6 * time.Hour,
		guide:  "驾驶人员应当注意道路积水和交通阻塞，确保安全",
		params: map[string]string{"rain_12h_mm": "55", "rain_6h_mm": "41", "rain_3h_mm": "28", "threshold_mm": "50", "window_h": "12"},
	}, {
		level: "yellow", severity: "warning",
		details: map[string]any{"level": "yellow", "previous_level": "", "change": "raised",
			"blue_mm": 61.2, "yellow_mm": 52.6, "orange_mm": 31.0, "red_mm": 31.0, "threshold_mm": 50.0, "window_h": 6.0},
		event: "暴雨黄色预警", headline: "奎文区东风街雨量站暴雨黄色预警：6小时降雨52.6毫米",
		urgency: "Expected", sev: "Moderate", response: []string{"Prepare", "Avoid"}, expires: 6 * time.Hour,
		guide:  "交通管理部门应当根据路况在强降雨路段采取交通管制措施，在积水路段实行交通引导",
		params: map[string]string{"rain_6h_mm": "52.6", "window_h": "6"},
	}, {
		level: "orange", severity: "major",
		details: map[string]any{"level": "orange", "previous_level": "", "change": "raised",
			"blue_mm": 70.1, "yellow_mm": 66.0, "orange_mm": 52.4, "red_mm": 52.4, "threshold_mm": 50.0, "window_h": 3.0},
		event: "暴雨橙色预警", headline: "奎文区东风街雨量站暴雨橙色预警：3小时降雨52.4毫米",
		urgency: "Immediate", sev: "Severe", response: []string{"Avoid", "Shelter"}, expires: 3 * time.Hour,
		guide:  "处于危险地带的单位应当停课、停业",
		params: map[string]string{"rain_3h_mm": "52.4", "threshold_mm": "50", "window_h": "3"},
	}, {
		level: "red", severity: "critical",
		details: map[string]any{"level": "red", "previous_level": "", "change": "raised",
			"blue_mm": 130.5, "yellow_mm": 118.0, "orange_mm": 104.8, "red_mm": 104.8, "threshold_mm": 100, "window_h": 3.0},
		event: "暴雨红色预警", headline: "奎文区东风街雨量站暴雨红色预警：3小时降雨104.8毫米",
		urgency: "Immediate", sev: "Extreme", response: []string{"Shelter", "Avoid"}, expires: 3 * time.Hour,
		guide:  "停止集会、停课、停业（除特殊行业外）",
		params: map[string]string{"rain_3h_mm": "104.8", "threshold_mm": "100"},
	}} {
		t.Run(tc.level, func(t *testing.T) {
			a := rainAlert(telemetry.AlertFiring, 1, tc.severity, t0, tc.details)
			doc, m := render(t, compose(t, a, nil, 7, cap.Area{}))
			checkEnvelope(t, doc, m, "Alert", t0, nil)
			equal(t, "identifier", m.Identifier, "370700-UW-20260724213105-000007")
			if len(m.Info) != 1 {
				t.Fatalf("%d infos, want 1", len(m.Info))
			}
			in := m.Info[0]
			equal(t, "language", in.Language, "zh-CN")
			equal(t, "category", strings.Join(in.Category, " "), "Met")
			equal(t, "event", in.Event, tc.event)
			equal(t, "headline", in.Headline, tc.headline)
			equal(t, "urgency", in.Urgency, tc.urgency)
			equal(t, "severity", in.Severity, tc.sev)
			equal(t, "certainty", in.Certainty, "Observed")
			equal(t, "responseType", strings.Join(in.ResponseType, " "), strings.Join(tc.response, " "))
			equal(t, "senderName", in.SenderName, "潍坊市城市管理局")
			if !in.Effective.Equal(m.Sent) || !in.Expires.Equal(m.Sent.Add(tc.expires)) {
				t.Errorf("effective %v expires %v, want %v and +%v", in.Effective, in.Expires, m.Sent, tc.expires)
			}
			equal(t, "eventCode rule", value(t, in.EventCode, "urbanwatch:rule"), "rainstorm")
			equal(t, "eventCode level", value(t, in.EventCode, "urbanwatch:level"), tc.level)
			equal(t, "parameter level", value(t, in.Parameters, "level"), tc.level)
			equal(t, "parameter alert_id", value(t, in.Parameters, "alert_id"), a.ID)
			for k, v := range tc.params {
				equal(t, "parameter "+k, value(t, in.Parameters, k), v)
			}
			contains(t, "description", in.Description, "截至2026年7月24日21时31分", "奎文区东风街雨量站",
				"近3小时累计降雨", "毫米以上，达到"+tc.event+"标准")
			contains(t, "instruction", in.Instruction, tc.event+"信号防御指南", "1. 政府及相关部门按照职责", tc.guide)
			equal(t, "web", in.Web, "https://uw.example.cn/alerts/rainstorm%2Fwf-rg-001%2F20260724T133105.250Z")
			checkArea(t, in, gaugeAt, 5)
		})
	}
}

// TestRainstormLifecycle follows one alert: raised yellow (Alert), upgraded
// to orange (Update referencing the Alert), cleared (Cancel referencing
// both).
func TestRainstormLifecycle(t *testing.T) {
	raised := compose(t, rainAlert(telemetry.AlertFiring, 1, "warning", t0, map[string]any{
		"level": "yellow", "previous_level": "", "change": "raised",
		"blue_mm": 58.0, "yellow_mm": 51.3, "orange_mm": 40.2, "red_mm": 40.2, "threshold_mm": 50.0, "window_h": 6.0,
	}), nil, 1, cap.Area{})
	doc, back := render(t, raised)
	checkEnvelope(t, doc, back, "Alert", t0, nil)

	t1 := t0.Add(40*time.Minute + 12*time.Second)
	upgraded := compose(t, rainAlert(telemetry.AlertFiring, 2, "major", t1, map[string]any{
		"level": "orange", "previous_level": "yellow", "change": "upgraded",
		"blue_mm": 75.5, "yellow_mm": 70.1, "orange_mm": 55.0, "red_mm": 55.0, "threshold_mm": 50.0, "window_h": 3.0,
	}), []cap.Ref{cap.RefTo(raised)}, 2, cap.Area{})
	doc, back = render(t, upgraded)
	checkEnvelope(t, doc, back, "Update", t1, []*cap.Message{raised})
	in := back.Info[0]
	equal(t, "event", in.Event, "暴雨橙色预警")
	equal(t, "headline", in.Headline, "奎文区东风街雨量站暴雨预警由黄色升级为橙色：3小时降雨55毫米")
	equal(t, "severity", in.Severity, "Severe")
	equal(t, "urgency", in.Urgency, "Immediate")
	contains(t, "description", in.Description, "暴雨预警由黄色升级为橙色", "3小时降雨量已达50毫米以上")
	equal(t, "parameter previous_level", value(t, in.Parameters, "previous_level"), "yellow")
	equal(t, "parameter alert_version", value(t, in.Parameters, "alert_version"), "2")
	if !in.Expires.Equal(back.Sent.Add(3 * time.Hour)) {
		t.Errorf("expires %v, want sent + 3 h", in.Expires)
	}

	t2 := t1.Add(2 * time.Hour)
	cancel := compose(t, rainAlert(telemetry.AlertResolved, 3, "major", t2, map[string]any{
		"level": "", "previous_level": "orange", "change": "cleared",
		"blue_mm": 80.0, "yellow_mm": 30.5, "orange_mm": 3.2, "red_mm": 3.2,
	}), []cap.Ref{cap.RefTo(raised), cap.RefTo(upgraded)}, 3, cap.Area{})
	doc, back = render(t, cancel)
	checkEnvelope(t, doc, back, "Cancel", t2, []*cap.Message{raised, upgraded})
	in = back.Info[0]
	equal(t, "responseType", strings.Join(in.ResponseType, " "), "AllClear")
	equal(t, "urgency", in.Urgency, "Past")
	equal(t, "severity", in.Severity, "Minor")
	equal(t, "event", in.Event, "暴雨橙色预警")
	equal(t, "headline", in.Headline, "奎文区东风街雨量站解除暴雨橙色预警")
	equal(t, "eventCode level", value(t, in.EventCode, "urbanwatch:level"), "orange")
	equal(t, "parameter level", value(t, in.Parameters, "level"), "none")
	contains(t, "description", in.Description, "解除暴雨橙色预警", "近3小时累计降雨3.2毫米")
	if !in.Expires.IsZero() {
		t.Errorf("a Cancel expires at %v", in.Expires)
	}
	if strings.Contains(string(doc), "<expires>") {
		t.Error("a Cancel document has <expires>")
	}
	checkArea(t, in, gaugeAt, 5)

	// Nothing was sent, so there is nothing to cancel.
	_, err := cap.Compose(weifang, rainAlert(telemetry.AlertResolved, 2, "minor", t2, map[string]any{"previous_level": "blue"}), nil, 4, cap.Area{})
	if !errors.Is(err, cap.ErrNothingToCancel) {
		t.Errorf("Cancel with no earlier message: err = %v, want ErrNothingToCancel", err)
	}
}

// TestRainstormDowngraded lowers red to orange: an Update that says 降级.
func TestRainstormDowngraded(t *testing.T) {
	earlier := cap.Ref{Sender: "urbanwatch@370700", Identifier: "370700-UW-20260724203105-000001",
		Sent: time.Date(2026, 7, 24, 12, 31, 5, 0, time.UTC)} // a stored reference, in UTC
	a := rainAlert(telemetry.AlertFiring, 3, "major", t0, map[string]any{
		"level": "orange", "previous_level": "red", "change": "downgraded",
		"blue_mm": 140.0, "yellow_mm": 122.4, "orange_mm": 61.7, "red_mm": 61.7, "threshold_mm": 50.0, "window_h": 3.0,
	})
	doc, m := render(t, compose(t, a, []cap.Ref{earlier, earlier}, 9, cap.Area{}))
	equal(t, "msgType", m.MsgType, "Update")
	if len(m.References) != 1 {
		t.Fatalf("references %v, want the one earlier message once", m.References)
	}
	contains(t, "document", string(doc), "<references>urbanwatch@370700,370700-UW-20260724203105-000001,2026-07-24T20:31:05+08:00</references>")
	in := m.Info[0]
	equal(t, "headline", in.Headline, "奎文区东风街雨量站暴雨预警由红色降级为橙色：3小时降雨61.7毫米")
	equal(t, "event", in.Event, "暴雨橙色预警")
	equal(t, "severity", in.Severity, "Severe")
	contains(t, "description", in.Description, "雨势减弱", "由红色降级为橙色", "3小时降雨量50毫米以上")
	contains(t, "instruction", in.Instruction, "暴雨橙色预警信号防御指南")
}

// TestWaterloggingLifecycle follows a depth point: warning (Alert), road
// closure (Update), water gone (Cancel).
func TestWaterloggingLifecycle(t *testing.T) {
	warn := compose(t, waterAlert(telemetry.AlertFiring, 1, "warning", t0, map[string]any{
		"depth_cm": 16.4, "level": "warning", "previous_level": "none",
		"warn_cm": 15, "close_cm": 25, "rise_cm_per_h": 22.8, "peak_cm": 16.4,
	}), nil, 11, cap.Area{})
	doc, back := render(t, warn)
	checkEnvelope(t, doc, back, "Alert", t0, nil)
	in := back.Info[0]
	equal(t, "category", strings.Join(in.Category, " "), "Met Transport")
	equal(t, "event", in.Event, "城市内涝预警")
	equal(t, "headline", in.Headline, "潍城区胜利街下穿立交积水16.4厘米，城市内涝预警")
	equal(t, "urgency", in.Urgency, "Immediate")
	equal(t, "severity", in.Severity, "Moderate")
	equal(t, "certainty", in.Certainty, "Observed")
	equal(t, "responseType", strings.Join(in.ResponseType, " "), "Avoid Monitor")
	equal(t, "eventCode rule", value(t, in.EventCode, "urbanwatch:rule"), "waterlogging")
	equal(t, "eventCode level", value(t, in.EventCode, "urbanwatch:level"), "warning")
	equal(t, "parameter depth_cm", value(t, in.Parameters, "depth_cm"), "16.4")
	equal(t, "parameter warn_cm", value(t, in.Parameters, "warn_cm"), "15")
	contains(t, "description", in.Description, "积水深度16.4厘米", "预警标准15厘米", "封闭标准25厘米", "水位每小时上涨约22.8厘米")
	contains(t, "instruction", in.Instruction, "避免进入下穿通道", "不要涉水步行或驾车强行通过")
	if !in.Expires.Equal(back.Sent.Add(2 * time.Hour)) {
		t.Errorf("expires %v, want sent + 2 h", in.Expires)
	}
	checkArea(t, in, underpass, 1)

	t1 := t0.Add(9 * time.Minute)
	closure := compose(t, waterAlert(telemetry.AlertFiring, 2, "critical", t1, map[string]any{
		"depth_cm": 26.0, "level": "road_closure", "previous_level": "warning",
		"warn_cm": 15.0, "close_cm": 25.0, "rise_cm_per_h": 61.3, "peak_cm": 26.0,
	}), []cap.Ref{cap.RefTo(warn)}, 12, cap.Area{})
	doc, back = render(t, closure)
	checkEnvelope(t, doc, back, "Update", t1, []*cap.Message{warn})
	in = back.Info[0]
	equal(t, "event", in.Event, "积水路段封闭")
	equal(t, "headline", in.Headline, "潍城区胜利街下穿立交积水26厘米，内涝预警升级为路段封闭")
	equal(t, "severity", in.Severity, "Severe")
	equal(t, "eventCode level", value(t, in.EventCode, "urbanwatch:level"), "road_closure")
	contains(t, "instruction", in.Instruction, "该路段已封闭", "不要涉水")
	contains(t, "description", in.Description, "该路段实施封闭")

	t2 := t1.Add(95 * time.Minute)
	cancel := compose(t, waterAlert(telemetry.AlertResolved, 3, "warning", t2, map[string]any{
		"depth_cm": 8.5, "level": "none", "previous_level": "warning",
		"warn_cm": 15, "close_cm": 25, "rise_cm_per_h": -12.0, "peak_cm": 31.2,
	}), []cap.Ref{cap.RefTo(warn), cap.RefTo(closure)}, 13, cap.Area{})
	doc, back = render(t, cancel)
	checkEnvelope(t, doc, back, "Cancel", t2, []*cap.Message{warn, closure})
	in = back.Info[0]
	equal(t, "headline", in.Headline, "潍城区胜利街下穿立交积水已消退，解除内涝预警")
	equal(t, "responseType", strings.Join(in.ResponseType, " "), "AllClear")
	equal(t, "urgency", in.Urgency, "Past")
	equal(t, "severity", in.Severity, "Minor")
	contains(t, "description", in.Description, "积水深度已降至8.5厘米", "最大积水深度31.2厘米")
	if !in.Expires.IsZero() {
		t.Errorf("a Cancel expires at %v", in.Expires)
	}
}

// TestArea gives two polygons, a circle and a district geocode: they are
// kept as given (latitude first), the region geocode is added once, and no
// default circle is added.
func TestArea(t *testing.T) {
	ringA := []telemetry.Location{{Lat: 36.70, Lon: 119.15}, {Lat: 36.70, Lon: 119.17}, {Lat: 36.72, Lon: 119.17}, {Lat: 36.72, Lon: 119.15}, {Lat: 36.70, Lon: 119.15}}
	ringB := []telemetry.Location{{Lat: 36.68, Lon: 119.10}, {Lat: 36.68, Lon: 119.12}, {Lat: 36.695, Lon: 119.11}, {Lat: 36.68, Lon: 119.10}}
	area := cap.Area{
		Desc:     "奎文区城区及潍城区东部",
		Polygons: [][]telemetry.Location{ringA, ringB},
		Circles:  []cap.Circle{{Center: telemetry.Location{Lat: 36.7085, Lon: 119.1621}, RadiusKM: 2.5}},
		Geocodes: []cap.Geocode{{Name: "GB/T 2260", Value: "370705"}},
	}
	a := rainAlert(telemetry.AlertFiring, 1, "major", t0, map[string]any{"level": "orange", "orange_mm": 50.2, "threshold_mm": 50, "window_h": 3})
	doc, m := render(t, compose(t, a, nil, 1, area))
	contains(t, "document", string(doc),
		"<polygon>36.7,119.15 36.7,119.17 36.72,119.17 36.72,119.15 36.7,119.15</polygon>",
		"<polygon>36.68,119.1 36.68,119.12 36.695,119.11 36.68,119.1</polygon>",
		"<circle>36.7085,119.1621 2.5</circle>")
	got := checkArea(t, m.Info[0], telemetry.Location{}, 0)
	equal(t, "areaDesc", got.Desc, area.Desc)
	if len(got.Polygons) != 2 || !slices.Equal(got.Polygons[0], ringA) || !slices.Equal(got.Polygons[1], ringB) {
		t.Errorf("polygons %v, want %v and %v", got.Polygons, ringA, ringB)
	}
	if !slices.Equal(got.Circles, area.Circles) {
		t.Errorf("circles %v, want %v", got.Circles, area.Circles)
	}
	want := []cap.Geocode{{Name: "GB/T 2260", Value: "370705"}, {Name: "GB/T 2260", Value: "370700"}}
	if !slices.Equal(got.Geocodes, want) {
		t.Errorf("geocodes %v, want %v", got.Geocodes, want)
	}
	if len(area.Geocodes) != 1 {
		t.Errorf("Compose changed the caller's area: %v", area.Geocodes)
	}

	// The region geocode the caller already gives is not repeated.
	area = cap.Area{Polygons: [][]telemetry.Location{ringA}, Geocodes: []cap.Geocode{{Name: "GB/T 2260", Value: "370700"}}}
	_, m = render(t, compose(t, a, nil, 2, area))
	got = checkArea(t, m.Info[0], telemetry.Location{}, 0)
	equal(t, "default areaDesc", got.Desc, "奎文区东风街雨量站周边")
	equal(t, "geocodes", len(got.Geocodes), 1)
}

// TestNumberTypes gives the same details as float64, int, json.Number (a
// decoder with UseNumber) and from a JSON round trip: the documents are
// identical.
func TestNumberTypes(t *testing.T) {
	floats := map[string]any{"depth_cm": 27.0, "level": "road_closure", "previous_level": "none",
		"warn_cm": 15.0, "close_cm": 25.0, "rise_cm_per_h": 30.0, "peak_cm": 27.0}
	ints := map[string]any{"depth_cm": 27, "level": "road_closure", "previous_level": "none",
		"warn_cm": int64(15), "close_cm": int32(25), "rise_cm_per_h": uint8(30), "peak_cm": 27}
	numbers := map[string]any{"depth_cm": json.Number("27"), "level": "road_closure", "previous_level": "none",
		"warn_cm": json.Number("15"), "close_cm": json.Number("25.0"), "rise_cm_per_h": json.Number("30"), "peak_cm": "27"}
	b, err := json.Marshal(waterAlert(telemetry.AlertFiring, 1, "critical", t0, ints))
	if err != nil {
		t.Fatal(err)
	}
	var decoded telemetry.Alert
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	want, _ := render(t, compose(t, waterAlert(telemetry.AlertFiring, 1, "critical", t0, floats), nil, 5, cap.Area{}))
	for name, a := range map[string]*telemetry.Alert{
		"int":         waterAlert(telemetry.AlertFiring, 1, "critical", t0, ints),
		"json.Number": waterAlert(telemetry.AlertFiring, 1, "critical", t0, numbers),
		"json":        &decoded,
	} {
		got, _ := render(t, compose(t, a, nil, 5, cap.Area{}))
		if string(got) != string(want) {
			t.Errorf("%s details give a different document:\n%s\nwant:\n%s", name, got, want)
		}
	}
	contains(t, "document", string(want), "<headline>潍城区胜利街下穿立交积水27厘米，路段封闭</headline>")

	// A level missing from the details is taken from the severity.
	_, m := render(t, compose(t, rainAlert(telemetry.AlertFiring, 1, "critical", t0, map[string]any{"red_mm": 101}), nil, 6, cap.Area{}))
	equal(t, "event from severity", m.Info[0].Event, "暴雨红色预警")
	equal(t, "headline from severity", m.Info[0].Headline, "奎文区东风街雨量站暴雨红色预警：3小时降雨101毫米")
}

// TestProfile: a status and a zone of the caller's, and a sender in UTC
// written as CAP wants (-00:00, never Z).
func TestProfile(t *testing.T) {
	p := weifang
	p.Status = "Exercise"
	p.Web = ""
	p.Location = time.UTC
	m, err := cap.Compose(p, rainAlert(telemetry.AlertFiring, 1, "minor", t0, map[string]any{"level": "blue", "blue_mm": 50.5}), nil, 1, cap.Area{})
	if err != nil {
		t.Fatal(err)
	}
	doc, back := render(t, m)
	equal(t, "status", back.Status, "Exercise")
	equal(t, "web", back.Info[0].Web, "")
	contains(t, "document", string(doc), "<sent>2026-07-24T13:31:05-00:00</sent>", "<expires>2026-07-24T19:31:05-00:00</expires>")
	// The identifier stays in China time, whatever the zone of sent.
	equal(t, "identifier", back.Identifier, "370700-UW-20260724213105-000001")

	for _, bad := range []cap.Profile{
		{Sender: "urbanwatch 370700", RegionCode: "370700"},
		{Sender: "urbanwatch@370700", RegionCode: "3707"},
		{Sender: "urbanwatch@370700", RegionCode: "370700", Status: "Live"},
		{Sender: "urbanwatch@370700", RegionCode: "370700", Web: "uw.example.cn"},
	} {
		if _, err := cap.Compose(bad, rainAlert(telemetry.AlertFiring, 1, "minor", t0, nil), nil, 1, cap.Area{}); err == nil {
			t.Errorf("Compose accepted profile %+v", bad)
		}
	}
}

// TestRefused: what XML and Compose must not let through.
func TestRefused(t *testing.T) {
	base := func() *cap.Message {
		return compose(t, rainAlert(telemetry.AlertFiring, 1, "warning", t0, map[string]any{"level": "yellow", "yellow_mm": 50.1}), nil, 1, cap.Area{
			Polygons: [][]telemetry.Location{{{Lat: 36.70, Lon: 119.15}, {Lat: 36.70, Lon: 119.17}, {Lat: 36.72, Lon: 119.17}, {Lat: 36.72, Lon: 119.15}, {Lat: 36.70, Lon: 119.15}}},
		})
	}
	if _, err := base().XML(); err != nil {
		t.Fatalf("the base message is refused: %v", err)
	}
	for _, tc := range []struct {
		name  string
		spoil func(m *cap.Message)
		want  string
	}{
		{"unclosed polygon", func(m *cap.Message) {
			r := m.Info[0].Areas[0].Polygons[0]
			m.Info[0].Areas[0].Polygons[0] = r[:len(r)-1]
		}, "not closed"},
		{"polygon of 3 points", func(m *cap.Message) {
			m.Info[0].Areas[0].Polygons[0] = []telemetry.Location{{Lat: 36.7, Lon: 119.1}, {Lat: 36.8, Lon: 119.1}, {Lat: 36.7, Lon: 119.1}}
		}, "at least 4"},
		{"latitude 91", func(m *cap.Message) {
			r := m.Info[0].Areas[0].Polygons[0]
			r[1].Lat = 91
		}, "latitude 91"},
		{"longitude 181 in a circle", func(m *cap.Message) {
			m.Info[0].Areas[0].Circles = []cap.Circle{{Center: telemetry.Location{Lat: 36.7, Lon: 181}, RadiusKM: 1}}
		}, "longitude 181"},
		{"zero radius", func(m *cap.Message) {
			m.Info[0].Areas[0].Circles = []cap.Circle{{Center: gaugeAt}}
		}, "radius"},
		{"identifier with a space", func(m *cap.Message) { m.Identifier = "370700-UW 1" }, "identifier"},
		{"sender with a comma", func(m *cap.Message) { m.Sender = "urbanwatch,370700" }, "sender"},
		{"sender with <", func(m *cap.Message) { m.Sender = "a<b" }, "sender"},
		{"no sent", func(m *cap.Message) { m.Sent = time.Time{} }, "sent"},
		{"bad status", func(m *cap.Message) { m.Status = "Live" }, "status"},
		{"no event", func(m *cap.Message) { m.Info[0].Event = "" }, "event"},
		{"no category", func(m *cap.Message) { m.Info[0].Category = nil }, "category"},
		{"bad urgency", func(m *cap.Message) { m.Info[0].Urgency = "Now" }, "urgency"},
		{"no areaDesc", func(m *cap.Message) { m.Info[0].Areas[0].Desc = " " }, "areaDesc"},
		{"Update without references", func(m *cap.Message) { m.MsgType = "Update" }, "references"},
		{"reference with a space", func(m *cap.Message) {
			m.MsgType = "Cancel"
			m.References = []cap.Ref{{Sender: "urbanwatch@370700", Identifier: "a b", Sent: t0}}
		}, "reference 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.spoil(m)
			doc, err := m.XML()
			if err == nil {
				t.Fatalf("XML accepted it:\n%s", doc)
			}
			contains(t, "error", err.Error(), tc.want)
		})
	}

	truck := &telemetry.Alert{
		ID: telemetry.AlertID("uncovered_load", "鲁G·A0001", t0), Rule: "uncovered_load", State: telemetry.AlertFiring, Version: 1,
		Severity: "warning", Subject: telemetry.Subject{Kind: telemetry.SubjectTruck, ID: "鲁G·A0001", Name: "鲁G·A0001"},
		TS: t0, Location: gaugeAt, Details: map[string]any{"cover": "open"},
	}
	if m, err := cap.Compose(weifang, truck, nil, 1, cap.Area{}); err == nil {
		t.Errorf("Compose made a warning of a truck rule: %+v", m)
	} else {
		contains(t, "error", err.Error(), "uncovered_load")
	}
	if _, err := cap.Compose(weifang, rainAlert(telemetry.AlertFiring, 1, "", t0, map[string]any{"level": "purple"}), nil, 1, cap.Area{}); err == nil {
		t.Error("Compose accepted rainstorm level purple")
	}
	if _, err := cap.Compose(weifang, nil, nil, 1, cap.Area{}); err == nil {
		t.Error("Compose accepted a nil alert")
	}
	if _, err := cap.Parse([]byte(`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"><sent>2026-07-24T21:31:05+08:00</sent></alert>`)); err == nil {
		t.Error("Parse accepted a CAP 1.1 document")
	}
}

// TestWaterloggingWording: a closure raised at once, a closure lowered to
// a warning, and a Cancel straight from a closure.
func TestWaterloggingWording(t *testing.T) {
	earlier := []cap.Ref{{Sender: "urbanwatch@370700", Identifier: "370700-UW-20260724203105-000001", Sent: t0.Add(-time.Hour)}}
	for _, tc := range []struct {
		name     string
		state    telemetry.AlertState
		severity string
		details  map[string]any
		prev     []cap.Ref
		msgType  string
		event    string
		headline string
		instr    string
	}{
		{"closure at once", telemetry.AlertFiring, "critical",
			map[string]any{"level": "road_closure", "previous_level": "none", "depth_cm": 31.5, "warn_cm": 15, "close_cm": 25, "rise_cm_per_h": 0.01},
			nil, "Alert", "积水路段封闭", "潍城区胜利街下穿立交积水31.5厘米，路段封闭", "该路段已封闭"},
		{"closure lowered", telemetry.AlertFiring, "warning",
			map[string]any{"level": "warning", "previous_level": "road_closure", "depth_cm": 19.0, "warn_cm": 15, "close_cm": 25, "rise_cm_per_h": -20.4},
			earlier, "Update", "城市内涝预警", "潍城区胜利街下穿立交积水回落至19厘米，路段封闭降级为内涝预警", "避免进入下穿通道"},
		{"closure cleared", telemetry.AlertResolved, "critical",
			map[string]any{"level": "none", "previous_level": "road_closure", "depth_cm": 4.0, "warn_cm": 15, "close_cm": 25},
			earlier, "Cancel", "积水路段封闭", "潍城区胜利街下穿立交积水已消退，解除路段封闭和内涝预警", "以现场交通管理为准"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, m := render(t, compose(t, waterAlert(tc.state, 2, tc.severity, t0, tc.details), tc.prev, 1, cap.Area{}))
			in := m.Info[0]
			equal(t, "msgType", m.MsgType, tc.msgType)
			equal(t, "event", in.Event, tc.event)
			equal(t, "headline", in.Headline, tc.headline)
			contains(t, "instruction", in.Instruction, tc.instr)
		})
	}
}
