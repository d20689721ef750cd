package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/storage/influx"
)

// service is the urbanwatch binary running as a child process.
type service struct {
	t    *testing.T
	bin  string
	cfg  string
	http string
	cmd  *exec.Cmd
	out  *os.File
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "urbanwatch")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (s *service) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "serve", "-config", s.cfg)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	testenv.WaitFor(s.t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + s.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "urbanwatch ready")
}

// kill9 kills the service with SIGKILL: no shutdown code runs.
func (s *service) kill9() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

func (s *service) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.t.Error("urbanwatch did not stop within 20s of SIGTERM")
		s.kill9()
	}
}

// TestNoLossAcrossKill9AndInfluxOutage publishes N messages with seq over
// real MQTT, kills urbanwatch with SIGKILL mid-stream and restarts it, stops
// InfluxDB and starts it again, and then finds exactly N distinct points in
// InfluxDB.
func TestNoLossAcrossKill9AndInfluxOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("whole-system test")
	}
	db := testenv.Influxd(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	mqttPort, httpPort := testenv.FreePort(t), testenv.FreePort(t)
	os.WriteFile(filepath.Join(dir, "registry.yaml"), []byte(`
fleets:
  - prefix: NL-
    class: trucks
    count: 16
    width: 2
    key: no-loss-test-fleet-key
`), 0o600)
	os.WriteFile(filepath.Join(dir, "urbanwatch.yaml"), fmt.Appendf(nil, `
registry: registry.yaml
data_dir: data
log: {level: info, format: json}
http: {listen: "127.0.0.1:%d"}
mqtt: {listen: "127.0.0.1:%d"}
influx: {url: %q, database: %q, batch_lines: 500}
`, httpPort, mqttPort, db.URL(), testenv.TestDatabase), 0o600)
	reg, err := config.LoadRegistry(filepath.Join(dir, "registry.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "urbanwatch.log"))
	defer func() {
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("urbanwatch log (tail):\n%s", tail(b, 6000))
		}
	}()
	svc := &service{t: t, bin: bin, cfg: filepath.Join(dir, "urbanwatch.yaml"), http: fmt.Sprintf("127.0.0.1:%d", httpPort), out: logf}
	svc.start()
	t.Cleanup(func() { // never leave the child running, whatever failed
		if svc.cmd.ProcessState == nil {
			svc.kill9()
		}
	})

	const perDevice = 400
	var devices []struct{ id, secret string }
	reg.AllDevices(func(d *config.Device, secret string) {
		devices = append(devices, struct{ id, secret string }{d.ID, secret})
	})
	total := len(devices) * perDevice
	var acked atomic.Int64
	base := time.Now().Add(-time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(devices))
	for _, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := publishReliably(ctx, fmt.Sprintf("tcp://127.0.0.1:%d", mqttPort), d.id, d.secret, perDevice, base, &acked); err != nil {
				errs <- err
			}
		}()
	}
	// Chaos, at points in the stream.
	testenv.WaitFor(t, time.Minute, func() bool { return acked.Load() >= int64(total/4) }, "a quarter acknowledged")
	svc.kill9()
	svc.start()
	testenv.WaitFor(t, time.Minute, func() bool { return acked.Load() >= int64(total/2) }, "half acknowledged")
	if err := db.Kill(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, func() bool { return acked.Load() >= int64(3*total/4) }, "three quarters acknowledged while InfluxDB is down")
	svc.kill9() // again, with InfluxDB down and the spool holding a backlog
	svc.start()
	if err := db.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var got int64
	testenv.WaitFor(t, 2*time.Minute, func() bool {
		got, err = influx.CountPoints(context.Background(), db.URL(), testenv.TestDatabase, "truck_gps", "lat")
		return err == nil && got >= int64(total)
	}, fmt.Sprintf("all %d points in InfluxDB", total))
	t.Logf("%d points in InfluxDB", got)
	if got != int64(total) {
		t.Fatalf("InfluxDB holds %d points, want exactly %d", got, total)
	}
	svc.stop()
}

// publishReliably publishes seq 0..n-1 for one device at QoS 1, each message
// until it is acknowledged, reconnecting as often as it takes: what a device
// with a persistent buffer does.
func publishReliably(ctx context.Context, broker, id, secret string, n int, base time.Time, acked *atomic.Int64) error {
	var c paho.Client
	connect := func() {
		for ctx.Err() == nil {
			c = paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(id).
				SetUsername(id).SetPassword(secret).SetProtocolVersion(4).SetAutoReconnect(false).
				SetConnectTimeout(2 * time.Second).SetWriteTimeout(2 * time.Second))
			if tok := c.Connect(); tok.WaitTimeout(3*time.Second) && tok.Error() == nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // back-off between connection attempts
		}
	}
	connect()
	defer func() { c.Disconnect(0) }()
	for seq := 0; seq < n; {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: gave up at seq %d: %w", id, seq, ctx.Err())
		}
		ts := base.Add(time.Duration(seq) * 10 * time.Millisecond)
		p := fmt.Appendf(nil, `{"ts":%d,"seq":%d,"lat":36.71,"lon":119.16,"speed_kmh":30,"heading":90,"sats":9,"valid":true}`, ts.UnixMilli(), seq)
		tok := c.Publish("trucks/"+id+"/gps", 1, false, p)
		if tok.WaitTimeout(3*time.Second) && tok.Error() == nil && c.IsConnectionOpen() {
			acked.Add(1)
			seq++
			continue
		}
		c.Disconnect(0)
		connect()
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
