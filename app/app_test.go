package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/storage/influx"
)

const testRegistry = `
fleets:
  - prefix: T
    class: trucks
    count: 4
    width: 1
    key: app-test-fleet-key-0123
  - prefix: R
    class: gauges
    count: 2
    width: 1
    key: app-test-gauge-key-0123
`

// startApp runs an App in-process on free ports against influxURL, with the
// given registry, logging at warn to the test log (logger nil) or nowhere.
func startApp(tb testing.TB, registry, influxURL string, log *zerolog.Logger) (*App, *config.Registry) {
	tb.Helper()
	return startAppCity(tb, registry, influxURL, log, nil)
}

// startAppCity is startApp with rules: city builds the city from the
// registry (nil runs no rules).
func startAppCity(tb testing.TB, registry, influxURL string, log *zerolog.Logger,
	city func(tb testing.TB, reg *config.Registry) *config.City, mods ...func(*Options)) (*App, *config.Registry) {
	tb.Helper()
	dir := tb.TempDir()
	os.WriteFile(filepath.Join(dir, "registry.yaml"), []byte(registry), 0o600)
	os.WriteFile(filepath.Join(dir, "urbanwatch.yaml"), fmt.Appendf(nil,
		"registry: registry.yaml\ndata_dir: data\nhttp: {listen: 127.0.0.1:0}\nmqtt: {listen: 127.0.0.1:0}\ninflux: {url: %q, database: %q}\n",
		influxURL, testenv.TestDatabase), 0o600)
	cfg, err := config.Load(filepath.Join(dir, "urbanwatch.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := config.LoadRegistry(cfg.Registry)
	if err != nil {
		tb.Fatal(err)
	}
	logger := zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
	if log != nil {
		logger = *log
	}
	ready := make(chan *App, 1)
	var c *config.City
	if city != nil {
		c = city(tb, reg)
	}
	o := Options{Config: cfg, Registry: reg, City: c, Logger: logger, Ready: func(a *App) { ready <- a }}
	for _, m := range mods {
		m(&o)
	}
	a, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		tb.Fatalf("app stopped: %v", err)
	case <-time.After(30 * time.Second):
		tb.Fatal("app not ready in 30s")
	}
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("app Run: %v", err)
		}
	})
	return a, reg
}

func secretOf(reg *config.Registry, id string) string {
	var s string
	reg.AllDevices(func(d *config.Device, secret string) {
		if d.ID == id {
			s = secret
		}
	})
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAppEndToEnd(t *testing.T) {
	db := testenv.Influxd(t)
	a, reg := startApp(t, testRegistry, db.URL(), nil)
	if code, _ := get(t, "http://"+a.HTTPAddr()+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get(t, "http://"+a.HTTPAddr()+"/readyz"); code != 200 || !strings.Contains(body, `"running":true`) {
		t.Fatalf("readyz %d %s", code, body)
	}
	pub := func(id, topic string, payloads ...string) {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + a.MQTTAddr()).SetClientID(id).
			SetUsername(id).SetPassword(secretOf(reg, id)).SetProtocolVersion(4))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s connect: %v", id, tok.Error())
		}
		defer c.Disconnect(50)
		for _, p := range payloads {
			if tok := c.Publish(topic, 1, false, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
		}
	}
	now := time.Now()
	var fixes []string
	for i := 0; i < 50; i++ {
		fixes = append(fixes, fmt.Sprintf(`{"ts":%d,"seq":%d,"lat":36.71,"lon":119.16,"speed_kmh":30,"heading":90,"sats":9,"valid":true}`,
			now.Add(time.Duration(i-60)*time.Second).UnixMilli(), i))
	}
	fixes = append(fixes, fixes[10])                                                                                                                  // a redelivery
	fixes = append(fixes, fmt.Sprintf(`{"ts":%d,"seq":99,"lat":91,"lon":119.16,"speed_kmh":30,"heading":90,"sats":9,"valid":true}`, now.UnixMilli())) // out of range
	pub("T1", "trucks/T1/gps", fixes...)
	pub("T2", "trucks/T2/sensors", fmt.Sprintf(`{"ts":%d,"seq":0,"cover":"open","body":"down","load_kg":17000}`, now.UnixMilli()))
	pub("R1", "gauges/R1/rain", fmt.Sprintf(`{"ts":%q,"seq":0,"mm":1.2,"interval_s":60}`, now.Format(time.RFC3339)))
	pub("R2", "gauges/R2/depth", fmt.Sprintf(`{"ts":%d,"seq":0,"depth_cm":16.5}`, now.UnixMilli()))

	ctx := context.Background()
	for _, c := range []struct {
		measurement, field string
		want               int64
	}{{"truck_gps", "lat", 50}, {"truck_sensors", "load_kg", 1}, {"gauge_rain", "mm", 1}, {"gauge_depth", "depth_cm", 1}} {
		testenv.WaitFor(t, 30*time.Second, func() bool {
			n, err := influx.CountPoints(ctx, db.URL(), testenv.TestDatabase, c.measurement, c.field)
			return err == nil && n == c.want
		}, fmt.Sprintf("%d points in %s", c.want, c.measurement))
	}
	wants := []string{
		`urbanwatch_ingest_accepted_total{kind="gps"} 50`,
		`urbanwatch_ingest_duplicates_total{kind="gps"} 1`,
		`urbanwatch_ingest_rejected_total{reason="out_of_range"} 1`,
		`urbanwatch_broker_connected_devices`,
		`urbanwatch_spool_bytes`,
		`urbanwatch_influx_written_points_total 53`,
	}
	var metrics string
	// The writer counts a batch just after InfluxDB answers, so the last
	// counter may trail the points by a moment.
	testenv.WaitFor(t, 10*time.Second, func() bool {
		_, metrics = get(t, "http://"+a.HTTPAddr()+"/metrics")
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				return false
			}
		}
		return true
	}, "metrics: "+strings.Join(wants, ", "))
	testenv.WaitFor(t, 5*time.Second, func() bool {
		letters, err := os.ReadFile(a.DeadLetterPath())
		return err == nil && strings.Contains(string(letters), `"reason":"out_of_range"`)
	}, "the bad message in the dead letters")
}

// TestNewFailsCleanlyOnALockedDataDir: a second App on a data directory in
// use is refused with an error, not a crash, and leaves the first running.
func TestNewFailsCleanlyOnALockedDataDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "registry.yaml"), []byte(e2eRegistry), 0o600)
	os.WriteFile(filepath.Join(dir, "urbanwatch.yaml"), []byte("registry: registry.yaml\ndata_dir: data\ninflux: {url: http://127.0.0.1:1}\n"), 0o600)
	cfg, err := config.Load(filepath.Join(dir, "urbanwatch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := config.LoadRegistry(cfg.Registry)
	if err != nil {
		t.Fatal(err)
	}
	first, err := New(Options{Config: cfg, Registry: reg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer first.closeStores()
	if _, err := New(Options{Config: cfg, Registry: reg, Logger: zerolog.Nop()}); err == nil {
		t.Fatal("a second App opened a data directory in use")
	}
}
