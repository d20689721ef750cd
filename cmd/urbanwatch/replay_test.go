package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The replay test city: a construction site CS around the origin, a
// disposal site DS 4 km east, the permitted route R1 along the road
// between them (y = 0), and one truck 鲁G·A0001 (device T1) allowed to haul
// from CS to DS in the evening.
const (
	replayLon0  = 119.16
	replayLat0  = 36.71
	replayPlate = "鲁G·A0001"
)

var replayT0 = time.Date(2026, 11, 24, 21, 0, 0, 0, time.FixedZone("CST", 8*3600))

// lonLat converts x, y metres east and north of the origin to WGS-84.
func lonLat(x, y float64) (lon, lat float64) {
	const mPerDeg = 111_320.0
	return replayLon0 + x/(mPerDeg*math.Cos(replayLat0*math.Pi/180)), replayLat0 + y/mPerDeg
}

// squareGeoJSON is a square of side m metres centred x metres east of the
// origin, as GeoJSON coordinates.
func squareGeoJSON(x, m float64) string {
	var pts []string
	for _, d := range [][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}, {-1, -1}} {
		lon, lat := lonLat(x+d[0]*m/2, d[1]*m/2)
		pts = append(pts, fmt.Sprintf("[%.7f, %.7f]", lon, lat))
	}
	return "[[" + strings.Join(pts, ", ") + "]]"
}

// writeReplayCity writes the configuration, registry, GeoJSON and two city
// files (corridors of 50 m and 400 m) into a temporary folder and returns
// the paths of the configuration and the two cities.
func writeReplayCity(t *testing.T) (cfg, city50, city400 string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("registry.yaml", "devices:\n  - id: T1\n    class: trucks\n")
	write("sites.geojson", `{"type": "FeatureCollection", "features": [
  {"type": "Feature", "properties": {"id": "CS", "name": "测试工地", "kind": "construction"},
   "geometry": {"type": "Polygon", "coordinates": `+squareGeoJSON(0, 200)+`}},
  {"type": "Feature", "properties": {"id": "DS", "name": "测试消纳场", "kind": "disposal"},
   "geometry": {"type": "Polygon", "coordinates": `+squareGeoJSON(4000, 200)+`}}
]}
`)
	a0, b0 := lonLat(0, 0)
	a1, b1 := lonLat(4000, 0)
	write("routes.geojson", fmt.Sprintf(`{"type": "FeatureCollection", "features": [
  {"type": "Feature", "properties": {"id": "R1", "name": "测试路"},
   "geometry": {"type": "LineString", "coordinates": [[%.7f, %.7f], [%.7f, %.7f]]}}
]}
`, a0, b0, a1, b1))
	city := func(corridor int) string {
		return fmt.Sprintf(`name: 测试市
time_zone: Asia/Shanghai
rules:
  off_route:
    corridor_m: %d
companies:
  - id: C1
    name: 潍坊测试运输有限公司
trucks:
  - plate: 鲁G·A0001
    company: C1
    devices: [T1]
permits:
  - id: P1
    truck: 鲁G·A0001
    valid_from: "2026-01-01"
    valid_to: "2026-12-31"
    windows: ["20:00-06:00"]
    origins: [CS]
    disposal: [DS]
    routes: [R1]
sites: {file: sites.geojson}
routes: {file: routes.geojson}
`, corridor)
	}
	city50 = write("city50.yaml", city(50))
	city400 = write("city400.yaml", city(400))
	cfg = write("urbanwatch.yaml", "registry: registry.yaml\ncity: city50.yaml\n")
	return cfg, city50, city400
}

// captureWriter builds a capture file's lines.
type captureWriter struct {
	b   bytes.Buffer
	seq map[string]int
}

// add appends one message of T1 at device time at, received 200 ms later;
// payload is the device JSON without ts and seq. asString writes the
// payload as a JSON string, as some capture tools do.
func (c *captureWriter) add(kind string, at time.Time, payload map[string]any, asString bool) {
	if c.seq == nil {
		c.seq = map[string]int{}
	}
	c.seq[kind]++
	payload["ts"] = at.Format(time.RFC3339Nano)
	payload["seq"] = c.seq[kind]
	p, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	var pv any = json.RawMessage(p)
	if asString {
		pv = string(p)
	}
	line, err := json.Marshal(map[string]any{"received": at.Add(200 * time.Millisecond).Format(time.RFC3339Nano),
		"topic": "trucks/T1/" + kind, "payload": pv})
	if err != nil {
		panic(err)
	}
	c.b.Write(append(line, '\n'))
}

func (c *captureWriter) fix(at time.Time, x, y float64) {
	lon, lat := lonLat(x, y)
	c.add("gps", at, map[string]any{"lat": lat, "lon": lon, "speed_kmh": 36.0, "heading": 90.0, "sats": 11, "valid": true}, false)
}

func (c *captureWriter) sensors(at time.Time) {
	c.add("sensors", at, map[string]any{"cover": "closed", "body": "down", "load_kg": 15000.0}, true)
}

// offRouteTrip is a loaded truck with its cover closed leaving CS along
// the route, driving 200 m north of it for 3 minutes, and coming back: a
// fix every 5 s at 36 km/h.
func offRouteTrip() *captureWriter {
	c := &captureWriter{}
	for i := 0; i <= 64; i++ {
		at := replayT0.Add(time.Duration(i) * 5 * time.Second)
		if i%12 == 0 {
			c.sensors(at)
		}
		x, y := float64(i)*50, 0.0
		switch {
		case i >= 11 && i <= 14: // leaving the road
			y = float64(i-10) * 50
		case i >= 15 && i <= 50: // 3 minutes 200 m off the route
			y = 200
		case i >= 51 && i <= 54: // back to the road
			y = float64(54-i) * 50
		}
		c.fix(at, x, y)
	}
	return c
}

// runReplay runs the replay command in-process and returns its output.
func runReplay(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), append([]string{"replay"}, args...), &out, &errOut); err != nil {
		t.Fatalf("replay %v: %v\nstderr:\n%s", args, err, errOut.String())
	}
	return out.String(), errOut.String()
}

// jsonEvents parses -json output.
func jsonEvents(t *testing.T, out string) []telemetry.Alert {
	t.Helper()
	var events []telemetry.Alert
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var a telemetry.Alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		events = append(events, a)
	}
	return events
}

func countEvents(events []telemetry.Alert, rule string, state telemetry.AlertState) int {
	n := 0
	for _, e := range events {
		if e.Rule == rule && e.State == state && e.Subject.ID == replayPlate {
			n++
		}
	}
	return n
}

func TestReplayCorridorComparison(t *testing.T) {
	cfg, city50, city400 := writeReplayCity(t)
	capture := filepath.Join(t.TempDir(), "capture.jsonl")
	if err := os.WriteFile(capture, offRouteTrip().b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	// The configuration's city (50 m): one off_route alert, and nothing else.
	out, _ := runReplay(t, "-config", cfg, "-capture", capture, "-json")
	events := jsonEvents(t, out)
	if n := countEvents(events, "off_route", telemetry.AlertFiring); n != 1 {
		t.Errorf("50 m corridor: %d off_route firing events for %s, want 1; events:\n%s", n, replayPlate, out)
	}
	for _, e := range events {
		if e.Rule != "off_route" {
			t.Errorf("50 m corridor: unexpected %s %s event", e.Rule, e.State)
		}
	}

	// 400 m: none.
	out, _ = runReplay(t, "-config", cfg, "-city", city400, "-capture", capture, "-json")
	if events := jsonEvents(t, out); len(events) != 0 {
		t.Errorf("400 m corridor: %d events, want none:\n%s", len(events), out)
	}

	// Text output: one line per event in the city's time, then the counts.
	out, _ = runReplay(t, "-config", cfg, "-capture", capture)
	line := regexp.MustCompile(`(?m)^2026-11-24T21:\d\d:\d\d\+08:00 FIRING  off_route  鲁G·A0001 \(潍坊测试运输有限公司\)  started 21:\d\d:\d\d  .*distance_m=`)
	if !line.MatchString(out) {
		t.Errorf("text output has no off_route FIRING line:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^replayed 71 records from capture .*capture\.jsonl, device time 2026-11-24T21:00:00\+08:00 to 2026-11-24T21:05:20\+08:00$`).MatchString(out) {
		t.Errorf("text output does not describe the input:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^\s*off_route\s+1\s+\d\s*$`).MatchString(out) {
		t.Errorf("text output has no off_route count row:\n%s", out)
	}

	// Compare: the alert is only in A.
	out, _ = runReplay(t, "-config", cfg, "-city", city50, "-compare", city400, "-capture", capture)
	if !regexp.MustCompile(`only in A \(1\):\n  off_route  鲁G·A0001 \(潍坊测试运输有限公司\)  started 2026-11-24T21:`).MatchString(out) {
		t.Errorf("compare output does not list the off_route alert under only in A:\n%s", out)
	}
	for _, want := range []string{"only in B (0):", "in both (0):", "A: " + city50, "B: " + city400} {
		if !strings.Contains(out, want) {
			t.Errorf("compare output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^\s*off_route\s+1\s+0\s*$`).MatchString(out) {
		t.Errorf("compare output has no per-rule row off_route 1 0:\n%s", out)
	}

	// Compared with itself, the alert is in both.
	out, _ = runReplay(t, "-config", cfg, "-compare", city50, "-capture", capture)
	if !strings.Contains(out, "only in A (0):") || !regexp.MustCompile(`in both \(1\):\n  off_route  鲁G·A0001 .* \(B \+0s\)`).MatchString(out) {
		t.Errorf("a city compared with itself:\n%s", out)
	}
}

func TestReplayCaptureBadLines(t *testing.T) {
	cfg, _, _ := writeReplayCity(t)
	trip := offRouteTrip().b.String()
	lines := strings.SplitAfter(trip, "\n")
	dup := lines[1] // a redelivery of the first fix
	bad := []string{
		`{"received": "2026-11-24T21:00:01+08:00", "topic": "trucks/T1/gps", "payload": {` + "\n", // truncated
		`{"received": "2026-11-24T21:00:01+08:00", "topic": "trucks/T1/gps", "payload": {"ts": 1, "seq": 1, "lat": 1, "lon": 2, "colour": "red"}}` + "\n",
		`{"received": "2026-11-24T21:00:01+08:00", "topic": "boats/T1/gps", "payload": {}}` + "\n",
		`{"received": "yesterday", "topic": "trucks/T1/gps", "payload": {}}` + "\n",
		`{"received": "2026-11-24T21:00:01+08:00", "topic": "trucks/T9/gps", "payload": {}}` + "\n",
	}
	// Lines 3-7 are bad, line 8 is blank, line 9 is a duplicate.
	capture := lines[0] + lines[1] + strings.Join(bad, "") + "\n" + dup + strings.Join(lines[2:], "")
	path := filepath.Join(t.TempDir(), "capture.jsonl")
	if err := os.WriteFile(path, []byte(capture), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut := runReplay(t, "-config", cfg, "-capture", path)
	for _, want := range []string{
		path + ":3: not a capture line",
		path + ":4: trucks/T1/gps: unknown_field",
		path + ":5: unknown_topic",
		path + ":6: received \"yesterday\"",
		path + ":7: unknown_device",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if n := strings.Count(errOut, path+":"); n != 5 {
		t.Errorf("%d lines reported, want 5:\n%s", n, errOut)
	}
	if !strings.Contains(out, "replayed 71 records from capture "+path) || !strings.Contains(out, "(5 bad lines, 1 duplicate dropped)") {
		t.Errorf("summary does not count the bad lines and the duplicate:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^\s*off_route\s+1\s+\d\s*$`).MatchString(out) {
		t.Errorf("the rest of the capture was not replayed:\n%s", out)
	}
}

// TestIntegrationReplayFromInflux stores the off-route trip in a real
// InfluxDB and replays it from there: the same alert as from the capture.
func TestIntegrationReplayFromInflux(t *testing.T) {
	m := testenv.Influxd(t)
	cfg, _, _ := writeReplayCity(t)
	conf, reg, err := loadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	err = readCapture(context.Background(), bytes.NewReader(offRouteTrip().b.Bytes()), newAdmitter(conf, reg),
		func(r *telemetry.Record) error {
			body = append(influx.AppendLine(body, r), '\n')
			return nil
		}, func(line int, err error) { t.Errorf("capture line %d: %v", line, err) })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(m.URL()+"/write?db="+m.Database(), "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: HTTP %d", resp.StatusCode)
	}
	out, _ := runReplay(t, "-config", cfg, "-influx-url", m.URL(), "-window", "2m", "-json",
		"-from", replayT0.Add(-time.Minute).Format(time.RFC3339), "-to", replayT0.Add(10*time.Minute).Format(time.RFC3339))
	events := jsonEvents(t, out)
	if len(events) != 2 || countEvents(events, "off_route", telemetry.AlertFiring) != 1 ||
		countEvents(events, "off_route", telemetry.AlertResolved) != 1 {
		t.Errorf("from InfluxDB: want off_route firing and resolved, got:\n%s", out)
	}
	if _, errOut := runReplay(t, "-config", cfg, "-influx-url", m.URL(),
		"-from", replayT0.Format(time.RFC3339), "-to", replayT0.Add(10*time.Minute).Format(time.RFC3339)); errOut != "" {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestReplayFlags(t *testing.T) {
	cfg, _, _ := writeReplayCity(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-config", cfg}, "give -capture FILE, or -from and -to"},
		{[]string{"-config", cfg, "-capture", "x", "-from", "2026-11-24T00:00:00Z"}, "not both"},
		{[]string{"-config", cfg, "-from", "2026-11-24T00:00:00Z", "-to", "2026-11-25T00:00:00Z"}, "no InfluxDB URL (use -influx-url)"},
		{[]string{"-config", cfg, "-from", "2026-11-25T00:00:00Z", "-to", "2026-11-24T00:00:00Z"}, "is not before"},
		{[]string{"-config", cfg, "-capture", filepath.Join(t.TempDir(), "missing.jsonl")}, "no such file"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"replay"}, c.args...), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("replay %v: %v, want an error containing %q", c.args, err, c.want)
		}
	}
}

// TestReplayOffences replays a truck rated 12 t hauling 15 t (overload)
// that loses over a quarter of its load at 36 km/h halfway (spillage): the
// same engine, the same offences.
func TestReplayOffences(t *testing.T) {
	cfg, city50, _ := writeReplayCity(t)
	y, err := os.ReadFile(city50)
	if err != nil {
		t.Fatal(err)
	}
	rated := filepath.Join(filepath.Dir(city50), "rated.yaml")
	y = bytes.Replace(y, []byte("    devices: [T1]\n"), []byte("    devices: [T1]\n    rated_load_kg: 12000\n"), 1)
	if err := os.WriteFile(rated, y, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &captureWriter{}
	for i := 0; i <= 70; i++ { // a fix and a sensors report every 5 s, 50 m apart
		at := replayT0.Add(time.Duration(i) * 5 * time.Second)
		kg := 15000.0
		if i >= 30 {
			kg = 11000
		}
		c.add("sensors", at, map[string]any{"cover": "closed", "body": "down", "load_kg": kg}, false)
		c.fix(at, float64(i)*50, 0)
	}
	capture := filepath.Join(t.TempDir(), "capture.jsonl")
	if err := os.WriteFile(capture, c.b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := runReplay(t, "-config", cfg, "-city", rated, "-capture", capture, "-json")
	events := jsonEvents(t, out)
	for _, rule := range []string{"overload", "spillage"} {
		if n := countEvents(events, rule, telemetry.AlertFiring); n != 1 {
			t.Errorf("%d %s firing events, want 1:\n%s", n, rule, out)
		}
	}
	if len(events) != 3 || countEvents(events, "overload", telemetry.AlertResolved) != 1 {
		t.Errorf("want overload raised and resolved (under the limit after the spill) and spillage:\n%s", out)
	}
}
