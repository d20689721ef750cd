package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/simulators"
	"github.com/urbanwatch/urbanwatch/simulators/wire"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// The browser test's city: demo trucks 0..simTrucks-1 are driven by the
// simulator; truck offender (of C01, like truck 0) stands still until the
// test makes it offend. Rain gauge stormGauge is left to the test too.
const (
	cityTrucks  = 26
	simTrucks   = 20
	offender    = 24 // CompanyID(24) = C01
	cityRain    = 4
	simRain     = 3
	stormGauge  = 3
	cityDepth   = 3
	simDepth    = 2
	bcryptQuick = 4
)

// TestConsoleBrowser starts the real binary (embedded broker, a real
// InfluxDB, the simulator driving trucks and gauges over MQTT) and drives
// the console in headless Chromium with the scripts in e2e/ (node --test,
// playwright-core). Screenshots of every view land in e2e/screenshots.
func TestConsoleBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED: the browser test does not run with -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node", "apt-get install -y nodejs npm", err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		testenv.Missing(t, "chromium", "apt-get install -y chromium", err)
	}
	e2e, _ := filepath.Abs("e2e")
	if _, err := os.Stat(filepath.Join(e2e, "node_modules", "playwright-core")); err != nil {
		testenv.Missing(t, "playwright-core", "cd web/e2e && npm ci", err)
	}
	influx := testenv.Influxd(t)

	dir := t.TempDir()
	bin := filepath.Join(dir, "urbanwatch")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/urbanwatch").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	registry, _ := filepath.Abs("../deploy/demo/registry.yaml")
	reg, err := config.LoadRegistry(registry)
	if err != nil {
		t.Fatal(err)
	}
	city := simulators.DemoCity(cityTrucks, cityRain, cityDepth, simulators.DemoSeed)
	if err := simulators.WriteCity(dir, city); err != nil {
		t.Fatal(err)
	}
	if err := city.Validate(reg); err != nil {
		t.Fatal(err)
	}
	users := &config.Users{}
	logins := map[string]map[string]string{}
	for _, u := range []struct{ key, name, role, company string }{
		{"admin", "admin", "admin", ""}, {"inspection", "insp", "inspection", ""}, {"duty", "duty", "duty", ""},
		{"company_a", "c01", "company", "C01"}, {"company_b", "c02", "company", "C02"},
	} {
		us := config.User{Name: u.name, Role: config.Role(u.role), Company: u.company}
		pw := u.name + "-browser-test"
		if err := us.SetPassword(pw, bcryptQuick); err != nil {
			t.Fatal(err)
		}
		users.Users = append(users.Users, us)
		logins[u.key] = map[string]string{"user": u.name, "password": pw}
	}
	if err := users.Save(filepath.Join(dir, "users.yaml")); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfgPath := filepath.Join(dir, "urbanwatch.yaml")
	cfg := fmt.Sprintf(`registry: %s
city: city.yaml
data_dir: data
log: {level: info, format: json}
http: {listen: "%s"}
mqtt: {listen: "%s"}
influx: {url: "%s", database: %s}
console: {users: users.yaml}
`, registry, httpAddr, mqttAddr, influx.URL(), influx.Database())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "-config", cfgPath, "-demo", "-demo-trucks", fmt.Sprint(simTrucks),
		"-demo-rain-gauges", fmt.Sprint(simRain), "-demo-depth-points", fmt.Sprint(simDepth), "-demo-storm=false")
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("urbanwatch output (last 6000 bytes):\n%s", tail(logs.String(), 6000))
		}
	})
	base := "http://" + httpAddr
	testenv.WaitFor(t, 60*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "urbanwatch ready")

	h := &harness{t: t, mqttAddr: mqttAddr, reg: reg, city: city}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"users": logins, "company_a": "C01", "company_b": "C02",
			"plate_a": city.Trucks[0].Plate, "plate_b": city.Trucks[1].Plate, "offender": city.Trucks[offender].Plate,
			"storm_gauge": city.Gauges[stormGauge].Device})
	})
	mux.HandleFunc("POST /inject", func(w http.ResponseWriter, _ *http.Request) {
		if err := h.uncovered(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"plate": city.Trucks[offender].Plate, "rule": "uncovered_load"})
	})
	mux.HandleFunc("POST /inject-storm", func(w http.ResponseWriter, _ *http.Request) {
		if err := h.storm(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"device": city.Gauges[stormGauge].Device})
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	shots := filepath.Join(e2e, "screenshots")
	os.MkdirAll(shots, 0o755)
	run := exec.Command(node, "--test", "--test-reporter=spec", "--test-concurrency=1", e2e)
	run.Dir = e2e
	run.Env = append(os.Environ(), "UW_URL="+base, "UW_HARNESS=http://"+ln.Addr().String(), "UW_SHOTS="+shots, "CHROMIUM="+chromium)
	out := &testenv.SyncBuffer{}
	run.Stdout, run.Stderr = out, out
	err = run.Run()
	t.Logf("browser tests:\n%s", out.String())
	if err != nil {
		t.Fatalf("browser tests failed: %v", err)
	}
	// node --test exits 0 when it finds no test at all: that is a failure.
	var tests, pass int
	for _, line := range strings.Split(out.String(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "ℹ"))
		fmt.Sscanf(line, "tests %d", &tests)
		fmt.Sscanf(line, "pass %d", &pass)
	}
	if tests == 0 || pass != tests {
		t.Fatalf("browser tests: %d run, %d passed", tests, pass)
	}
	t.Logf("screenshots in %s", shots)
}

// harness plays the devices the test controls, over MQTT as those devices.
type harness struct {
	t        *testing.T
	mqttAddr string
	reg      *config.Registry
	city     *config.City
	mu       sync.Mutex
	seq      uint64
}

// publish sends recs as device, QoS 1, waiting for each PUBACK.
func (h *harness) publish(device string, recs []telemetry.Record) error {
	var secret string
	h.reg.AllDevices(func(d *config.Device, s string) {
		if d.ID == device {
			secret = s
		}
	})
	if secret == "" {
		return fmt.Errorf("no secret for %s", device)
	}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + h.mqttAddr).SetClientID(device).SetUsername(device).
		SetPassword(secret).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect %s: %v", device, tok.Error())
	}
	defer c.Disconnect(100)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range recs {
		h.seq++
		recs[i].Device, recs[i].Seq = device, h.seq
		topic := map[telemetry.Kind]string{telemetry.KindGPS: "trucks/%s/gps", telemetry.KindSensors: "trucks/%s/sensors",
			telemetry.KindRain: "gauges/%s/rain", telemetry.KindDepth: "gauges/%s/depth"}[recs[i].Kind]
		tok := c.Publish(fmt.Sprintf(topic, device), 1, false, wire.Append(nil, &recs[i], wire.RFC3339))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("publish %s: %v", device, tok.Error())
		}
	}
	return nil
}

// uncovered drives the offender loaded with its cover open at 30 km/h for
// the 44 s of device time up to now: past the rule's 30 s dwell.
func (h *harness) uncovered() error {
	now := time.Now()
	start := now.Add(-44 * time.Second)
	var recs []telemetry.Record
	recs = append(recs, telemetry.Record{Kind: telemetry.KindSensors, Header: telemetry.Header{TS: start},
		Sensors: telemetry.SensorState{Cover: telemetry.CoverOpen, Body: telemetry.BodyDown, LoadKg: 18500, HasLoad: true}})
	lat, lon := 36.7200, 119.1000 // a street away from every demo site
	for i := 0; i <= 22; i++ {
		ts := start.Add(time.Duration(i) * 2 * time.Second)
		recs = append(recs, telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{TS: ts},
			Fix: telemetry.Fix{Lat: lat, Lon: lon + float64(i)*0.00018, SpeedKmh: 30, Heading: 90, Sats: 11, Valid: true}})
	}
	return h.publish(h.city.Trucks[offender].Devices[0], recs)
}

// storm makes the storm gauge report 10 mm a minute for the 7 minutes up
// to now: 70 mm, the CMA orange level (50 mm in 3 h).
func (h *harness) storm() error {
	now := time.Now()
	var recs []telemetry.Record
	for i := 6; i >= 0; i-- {
		recs = append(recs, telemetry.Record{Kind: telemetry.KindRain, Header: telemetry.Header{TS: now.Add(-time.Duration(i) * time.Minute)},
			Rain: telemetry.RainReading{MM: 10, IntervalS: 60}})
	}
	return h.publish(h.city.Gauges[stormGauge].Device, recs)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := strings.IndexByte(s[len(s)-n:], '\n')
	return s[len(s)-n+i+1:]
}
