package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/alerting"
	"github.com/urbanwatch/urbanwatch/app"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// backupCity: trucks T1..T6 of one company and no permits, so each raises
// no_permit after 30 s of driving (device time).
func backupCity(t *testing.T, reg *config.Registry) *config.City {
	t.Helper()
	c := &config.City{Companies: []config.Company{{ID: "C1", Name: "备份测试运输"}}}
	for i := range 6 {
		c.Trucks = append(c.Trucks, config.Truck{Plate: fmt.Sprintf("鲁G·B000%d", i), Company: "C1",
			Devices: []string{fmt.Sprintf("T%d", i+1)}})
	}
	if err := c.Validate(reg); err != nil {
		t.Fatal(err)
	}
	return c
}

type ack struct {
	device string
	seq    uint64
}

// TestBackupWhileWriting copies the data dir while trucks publish and the
// rules, the alert journal and the alert store write, with InfluxDB down
// (so the spool keeps every record), and a segment roll forced in the
// middle of the copy. The copy must hold every message acknowledged before
// the backup began and every alert decision made before it, and open with
// app.New as a crashed service's data dir does.
func TestBackupWhileWriting(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes over MQTT for a few seconds")
	}
	dir := t.TempDir()
	// InfluxDB is down: nothing is consumed, so nothing acknowledged may be
	// absent from the copy.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	os.WriteFile(filepath.Join(dir, "registry.yaml"), []byte(
		"fleets:\n  - {prefix: T, class: trucks, count: 6, width: 1, key: backup-test-fleet-key-01}\n"), 0o600)
	cfgPath := filepath.Join(dir, "urbanwatch.yaml")
	os.WriteFile(cfgPath, fmt.Appendf(nil, `registry: registry.yaml
data_dir: data
http: {listen: "127.0.0.1:0"}
mqtt: {listen: "127.0.0.1:0"}
spool: {segment_bytes: 1MiB, max_bytes: 64MiB}
influx: {url: %q, timeout: 1s}
`, down.URL), 0o600)
	cfg, reg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Segments of 64 KiB (below what the configuration allows) so the
	// spool rolls every thousand messages and the copy spans many.
	cfg.Spool.SegmentBytes = 64 << 10
	city := backupCity(t, reg)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	ready := make(chan *app.App, 1)
	a, err := app.New(app.Options{Config: cfg, Registry: reg, City: city, Logger: log,
		Ready: func(a *app.App) { ready <- a }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("app: %v", err)
			}
		}
	}
	defer stop()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("app stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("app not ready")
	}

	// Six trucks publish QoS 1 fixes as fast as they are acknowledged,
	// moving at 30 km/h one fix a second of device time, from three hours
	// ago (a back-filled burst).
	var (
		mu     sync.Mutex
		acked  []ack
		quit   = make(chan struct{})
		wg     sync.WaitGroup
		pubErr atomic.Value
	)
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	reg.AllDevices(func(d *config.Device, secret string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + a.MQTTAddr()).SetClientID(d.ID).
				SetUsername(d.ID).SetPassword(secret).SetProtocolVersion(4).SetAutoReconnect(false))
			if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				pubErr.Store(fmt.Errorf("%s connect: %v", d.ID, tok.Error()))
				return
			}
			defer c.Disconnect(50)
			// 32 messages in flight per truck, as a terminal back-filling
			// after a tunnel sends them.
			const window = 32
			for seq := uint64(1); ; seq += window {
				select {
				case <-quit:
					return
				default:
				}
				var toks [window]paho.Token
				for i := range uint64(window) {
					ts := start.Add(time.Duration(seq+i) * time.Second)
					p := fmt.Sprintf(`{"ts":%d,"seq":%d,"lat":%.6f,"lon":%.6f,"speed_kmh":30,"heading":90,"sats":9,"valid":true}`,
						ts.UnixMilli(), seq+i, 36.7, 119.1+float64(seq+i)*1e-4)
					toks[i] = c.Publish("trucks/"+d.ID+"/gps", 1, false, p)
				}
				for i, tok := range toks {
					if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
						pubErr.Store(fmt.Errorf("%s publish: %v", d.ID, tok.Error()))
						return
					}
					mu.Lock()
					acked = append(acked, ack{d.ID, seq + uint64(i)})
					mu.Unlock()
				}
			}
		}()
	})
	stopPublishing := func() {
		close(quit)
		wg.Wait()
		if err, ok := pubErr.Load().(error); ok && err != nil {
			t.Fatal(err)
		}
	}
	nacked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	// Wait for the alerts and a first acknowledgement by a person.
	mg := a.Alerting()
	testenv.WaitFor(t, 30*time.Second, func() bool {
		list, _ := mg.List(alerting.Filter{Rule: "no_permit"})
		return len(list) >= 3 && nacked() > 3000
	}, "no_permit alerts for three trucks")
	list, _ := mg.List(alerting.Filter{Rule: "no_permit"})
	if _, err := mg.Acknowledge(list[0].ID, "duty", "on it"); err != nil {
		t.Fatal(err)
	}
	alertsBefore := map[string]bool{}
	for _, al := range mg.Select(alerting.Filter{Limit: 1000}) {
		alertsBefore[al.ID] = al.AckedBy != ""
	}
	mu.Lock()
	ackedBefore := append([]ack(nil), acked...)
	mu.Unlock()

	// Back up while the trucks go on publishing; after the checkpoints
	// are copied, wait for the spool to start a new segment, so the copy
	// meets a segment sealed and one created under it.
	segments := func() int {
		m, _ := filepath.Glob(filepath.Join(cfg.DataDir, "spool", "*.seg"))
		return len(m)
	}
	var hooked []string
	rolled := false
	backupHook = func(step string) {
		hooked = append(hooked, step)
		if step == "spool: last segment" && !rolled {
			rolled = true
			n := segments()
			testenv.WaitFor(t, 30*time.Second, func() bool { return segments() > n }, "a new spool segment")
		}
	}
	defer func() { backupHook = func(string) {} }()
	to := filepath.Join(t.TempDir(), "copy")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"backup", "-config", cfgPath, "-to", to}, &out, &errOut); err != nil {
		t.Fatalf("backup: %v\n%s", err, errOut.String())
	}
	t.Logf("%s(hook steps %q)", out.String(), hooked)
	if !strings.Contains(strings.Join(hooked, ","), "spool: last segment") {
		t.Fatalf("the backup never reached the spool's last segment: %q", hooked)
	}
	stopPublishing()
	t0 := time.Now()
	stop()
	t.Logf("stopped in %s", time.Since(t0))

	// Every message acknowledged before the backup is in the copy's spool.
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(to, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	have := map[ack]bool{}
	var rec telemetry.Record
	if err := sp.Scan(func(p []byte) error {
		if err := rec.UnmarshalBinary(p); err != nil {
			return err
		}
		have[ack{rec.Device, rec.Seq}] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	var missing []ack
	for _, k := range ackedBefore {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d messages acknowledged before the backup are missing from the copy, e.g. %v",
			len(missing), len(ackedBefore), missing[:min(5, len(missing))])
	}
	// Nothing was consumed, so each truck's records in the copy run from 1
	// without a gap: no segment was cut short before a newer one.
	count, top := map[string]uint64{}, map[string]uint64{}
	for k := range have {
		count[k.device]++
		top[k.device] = max(top[k.device], k.seq)
	}
	for d := range count {
		if count[d] != top[d] {
			t.Errorf("%s: %d records in the copy, up to seq %d: a gap", d, count[d], top[d])
		}
	}
	t.Logf("%d acknowledged before the backup, %d records in the copy", len(ackedBefore), len(have))

	// The copy opens as a data dir, with every alert and acknowledgement.
	cfg2 := *cfg
	cfg2.DataDir = to
	cfg2.HTTP.Listen, cfg2.MQTT.Listen = "127.0.0.1:0", "127.0.0.1:0"
	b, err := app.New(app.Options{Config: &cfg2, Registry: reg, City: backupCity(t, reg), Logger: log})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	for id, wasAcked := range alertsBefore {
		al, err := b.Alerting().Get(id)
		if err != nil {
			t.Errorf("alert %s missing from the copy: %v", id, err)
			continue
		}
		if wasAcked && al.AckedBy != "duty" {
			t.Errorf("alert %s: acknowledgement missing from the copy", id)
		}
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	t0 = time.Now()
	if err := b.Run(cctx); err != nil {
		t.Fatalf("run the copy: %v", err)
	}
	t.Logf("copy ran and stopped in %s", time.Since(t0))
	if _, err := os.Stat(filepath.Join(to, "BACKUP.json")); err != nil {
		t.Error(err)
	}
}

func TestBackupRefusesNonEmptyTarget(t *testing.T) {
	src, to := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(to, "x"), nil, 0o600)
	var out bytes.Buffer
	err := run(context.Background(), []string{"backup", "-data-dir", src, "-to", to}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestHealthcheck(t *testing.T) {
	code := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		fmt.Fprintln(w, `{"reason":"spool at its disk ceiling"}`)
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "-url", srv.URL + "/readyz"}, &out, &out); err != nil {
		t.Fatalf("ready: %v", err)
	}
	code = http.StatusServiceUnavailable
	err := run(context.Background(), []string{"healthcheck", "-url", srv.URL + "/readyz"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "ceiling") {
		t.Fatalf("not ready: err = %v", err)
	}
	if err := run(context.Background(), []string{"healthcheck", "-url", "http://127.0.0.1:1/readyz"}, &out, &out); err == nil {
		t.Fatal("nothing listening: want an error")
	}
}

// TestWholeFramesKeepsFramesAfterACorruptRegion: the copy of a spool
// segment is cut only at a torn tail, not at a corrupt region that the
// spool resynchronised past on open, with acknowledged frames after it.
func TestWholeFramesKeepsFramesAfterACorruptRegion(t *testing.T) {
	frame := func(payload string) []byte {
		b := make([]byte, 8, 8+len(payload))
		binary.LittleEndian.PutUint32(b[:4], uint32(len(payload)))
		sum := crc32.Update(crc32.Checksum(b[:4], castagnoli), castagnoli, []byte(payload))
		binary.LittleEndian.PutUint32(b[4:8], sum)
		return append(b, payload...)
	}
	var good []byte
	for i := range 5 {
		good = append(good, frame(fmt.Sprintf("record %d", i))...)
	}
	garbage := []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7}
	for _, tc := range []struct {
		name string
		data []byte
		want int
	}{
		{"corrupt region, frames after", append(append(append([]byte{}, good...), garbage...), good...), 2*len(good) + len(garbage)},
		{"torn tail", append(append([]byte{}, good...), frame("a record cut short")[:12]...), len(good)},
		{"garbage tail", append(append([]byte{}, good...), garbage...), len(good)},
		{"whole", good, len(good)},
	} {
		p := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(p, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wholeFrames(f, 0, int64(len(tc.data)), binary.LittleEndian, true)
		f.Close()
		if err != nil || got != int64(tc.want) {
			t.Errorf("%s: cut at %d (%v), want %d", tc.name, got, err, tc.want)
		}
	}
}
