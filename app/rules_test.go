package app

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/paulmach/orb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/rules/geo"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

var plane = geo.NewPlane(119.16, 36.71)

func square(x, y, m float64) orb.MultiPolygon {
	var ring orb.Ring
	for _, d := range [][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}, {-1, -1}} {
		lon, lat := plane.Unproject(geo.XY{X: x + d[0]*m/2, Y: y + d[1]*m/2})
		ring = append(ring, orb.Point{lon, lat})
	}
	return orb.MultiPolygon{orb.Polygon{ring}}
}

// testCity: truck 鲁G·A0001 (device T1) may haul from CS (x=0) to DS
// (x=4000 m) along the road y=0.
func testCity(tb testing.TB, reg *config.Registry) *config.City {
	tb.Helper()
	a, b := plane.Unproject(geo.XY{X: 0, Y: 0})
	c2, d2 := plane.Unproject(geo.XY{X: 4000, Y: 0})
	c := &config.City{
		Companies: []config.Company{{ID: "C1", Name: "潍坊测试运输有限公司"}},
		Trucks:    []config.Truck{{Plate: "鲁G·A0001", Company: "C1", Devices: []string{"T1"}}},
		Permits: []config.Permit{{ID: "P1", Truck: "鲁G·A0001",
			ValidFrom: config.Date{Year: 2026, Month: 1, Day: 1}, ValidTo: config.Date{Year: 2030, Month: 12, Day: 31},
			Windows: []config.Window{{Start: 0, End: 24 * 3600}}, Origins: []string{"CS"}, Disposal: []string{"DS"},
			Routes: []string{"R1"}}},
		Sites: []config.Site{
			{ID: "CS", Name: "测试工地", Kind: config.SiteConstruction, Area: square(0, 0, 200)},
			{ID: "DS", Name: "测试消纳场", Kind: config.SiteDisposal, Area: square(4000, 0, 200)},
		},
		Routes: []config.Route{{ID: "R1", Name: "测试路", Path: orb.LineString{{a, b}, {c2, d2}}}},
	}
	if err := c.Validate(reg); err != nil {
		tb.Fatal(err)
	}
	return c
}

// uncoveredTrip is a loaded truck driving 150 s with its cover open, then
// closing it: one uncovered_load alert, raised and resolved.
func uncoveredTrip(start time.Time) []telemetry.Record {
	var out []telemetry.Record
	seq := map[telemetry.Kind]uint64{}
	add := func(r telemetry.Record) {
		seq[r.Kind]++
		r.Device, r.Seq, r.Received = "T1", seq[r.Kind], r.TS
		out = append(out, r)
	}
	sens := func(at time.Time, c telemetry.Cover) {
		add(telemetry.Record{Kind: telemetry.KindSensors, Header: telemetry.Header{TS: at},
			Sensors: telemetry.SensorState{Cover: c, Body: telemetry.BodyDown, LoadKg: 15000, HasLoad: true}})
	}
	sens(start, telemetry.CoverOpen)
	for i := range 200 {
		at := start.Add(time.Duration(i) * time.Second)
		if i == 150 {
			sens(at, telemetry.CoverClosed)
		}
		lon, lat := plane.Unproject(geo.XY{X: float64(i) * 10, Y: 0})
		add(telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{TS: at},
			Fix: telemetry.Fix{Lat: lat, Lon: lon, SpeedKmh: 36, Sats: 10, Valid: true}})
	}
	return out
}

// stageEnv is a rules stage over real spools in dir, as a restart finds it.
type stageEnv struct {
	sp, journal *spool.Spool
	stage       *rulesStage
}

func openStage(t *testing.T, dir string, city *config.City) *stageEnv {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	j, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "alerts")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := newRulesStage(city, sp, j, dir, time.Now, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return &stageEnv{sp: sp, journal: j, stage: st}
}

// crash abandons the stage as kill -9 would (no final snapshot, only what
// was durable survives) and returns what the journal holds.
func (e *stageEnv) crash(t *testing.T) []string {
	t.Helper()
	if e.stage.lastCommit != nil {
		if err := e.stage.lastCommit.Wait(); err != nil { // journal writes were submitted before the "kill"
			t.Fatal(err)
		}
	}
	got := journaled(t, e.journal)
	e.journal.Close()
	e.sp.Close()
	return got
}

// next evaluates every record the stage's cursor has not acknowledged.
func (e *stageEnv) next(t *testing.T) spool.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := e.stage.input.Next(ctx, 1<<20, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	var rec telemetry.Record
	e.stage.evaluate(b, &rec)
	return b
}

// journaled returns the journal's events as "rule state vN".
func journaled(t *testing.T, j *spool.Spool) []string {
	t.Helper()
	var out []string
	err := j.Scan(func(p []byte) error {
		_, js, err := decodeJournal(p)
		if err != nil {
			return err
		}
		if tripOf(js) != nil {
			return nil
		}
		var a telemetry.Alert
		if err := json.Unmarshal(js, &a); err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %s v%d", a.Rule, a.State, a.Version))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func appendAll(t *testing.T, sp *spool.Spool, recs []telemetry.Record) {
	t.Helper()
	for i := range recs {
		if err := sp.Append(recs[i].AppendBinary(nil)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRulesRestartAnnouncesNothingTwice(t *testing.T) {
	city := testCity(t, nil)
	trip := uncoveredTrip(time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC))
	firstHalf := slices.IndexFunc(trip, func(r telemetry.Record) bool { return r.Kind == telemetry.KindGPS && r.Seq == 60 })
	want := []string{"uncovered_load firing v1", "uncovered_load resolved v2"}

	t.Run("crash before any snapshot", func(t *testing.T) {
		dir := t.TempDir()
		e := openStage(t, dir, city)
		appendAll(t, e.sp, trip[:firstHalf])
		e.next(t) // raises the alert, then the process dies
		if got := e.crash(t); !slices.Equal(got, want[:1]) {
			t.Fatalf("journal before the crash %q", got)
		}
		e = openStage(t, dir, city)
		appendAll(t, e.sp, trip[firstHalf:])
		e.next(t) // re-evaluates everything: the raise is suppressed, the resolve is new
		if got := e.crash(t); !slices.Equal(got, want) {
			t.Fatalf("journal after the restart %q, want %q", got, want)
		}
	})

	t.Run("crash after a snapshot", func(t *testing.T) {
		dir := t.TempDir()
		e := openStage(t, dir, city)
		appendAll(t, e.sp, trip[:20])
		b := e.next(t)
		if err := e.stage.snapshot(&b); err != nil {
			t.Fatal(err)
		}
		appendAll(t, e.sp, trip[20:firstHalf])
		e.next(t) // raises after the snapshot
		e.crash(t)
		e = openStage(t, dir, city)
		if len(e.stage.suppress) != 1 {
			t.Fatalf("events to suppress after restart: %d, want 1", len(e.stage.suppress))
		}
		appendAll(t, e.sp, trip[firstHalf:])
		e.next(t)
		if got := e.crash(t); !slices.Equal(got, want) {
			t.Fatalf("journal %q, want %q", got, want)
		}
	})

	t.Run("crash after a background snapshot", func(t *testing.T) {
		dir := t.TempDir()
		e := openStage(t, dir, city)
		appendAll(t, e.sp, trip[:20])
		b := e.next(t)
		e.stage.snapBusy <- struct{}{} // a snapshot still being written
		if e.stage.snapshotInBackground(&b) {
			t.Fatal("a second snapshot started while one was being written")
		}
		<-e.stage.snapBusy
		if !e.stage.snapshotInBackground(&b) {
			t.Fatal("background snapshot not started")
		}
		appendAll(t, e.sp, trip[20:firstHalf])
		e.next(t)                                     // raises while the snapshot may still be on its way to disk
		if err := e.stage.snapshot(nil); err != nil { // waits for it
			t.Fatal(err)
		}
		e.crash(t)
		e = openStage(t, dir, city)
		if len(e.stage.suppress) != 1 {
			t.Fatalf("events to suppress after restart: %d, want 1", len(e.stage.suppress))
		}
		if b := e.next(t); len(b.Records) != firstHalf-20 { // the replay starts after the snapshot
			t.Fatalf("replayed %d records after the restart, want the %d after the snapshot", len(b.Records), firstHalf-20)
		}
		appendAll(t, e.sp, trip[firstHalf:])
		e.next(t)
		if got := e.crash(t); !slices.Equal(got, want) {
			t.Fatalf("journal %q, want %q", got, want)
		}
	})

	t.Run("cleared while down", func(t *testing.T) {
		dir := t.TempDir()
		e := openStage(t, dir, city)
		appendAll(t, e.sp, trip[:firstHalf])
		b := e.next(t)
		if err := e.stage.snapshot(&b); err != nil {
			t.Fatal(err)
		}
		e.crash(t)
		// While urbanwatch was down the truck closed its cover and the
		// spool kept what its terminal sent on reconnecting.
		e = openStage(t, dir, city)
		if len(e.stage.suppress) != 0 {
			t.Fatalf("nothing was emitted after the snapshot, yet %d events are suppressed", len(e.stage.suppress))
		}
		appendAll(t, e.sp, trip[firstHalf:])
		e.next(t)
		if got := e.crash(t); !slices.Equal(got, want) {
			t.Fatalf("journal %q, want %q", got, want)
		}
	})
}

func TestRulesSnapshotIsCompact(t *testing.T) {
	city := testCity(t, nil)
	e := openStage(t, t.TempDir(), city)
	defer e.crash(t)
	appendAll(t, e.sp, uncoveredTrip(time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC)))
	e.next(t)
	snap, err := e.stage.engine.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap) > 4096 || len(snap) == 0 {
		t.Fatalf("snapshot of one truck is %d bytes", len(snap))
	}
}

const rulesRegistry = `
fleets:
  - {prefix: T, class: trucks, count: 4, width: 1, key: app-test-fleet-key-0123}
devices:
  - {id: console-1, class: operators, secret_hash: "%s"}
`

// TestAlertsOverMQTT drives a truck with its cover open through the real
// broker and reads the alert events as a duty console does: subscribed to
// urbanwatch/alerts/# with an operator account.
func TestAlertsOverMQTT(t *testing.T) {
	db := testenv.Influxd(t)
	reg := fmt.Sprintf(rulesRegistry, config.HashSecret("console-secret"))
	a, registry := startAppCity(t, reg, db.URL(), nil, testCity)

	got := make(chan telemetry.Alert, 16)
	console := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + a.MQTTAddr()).SetClientID("console-1").
		SetUsername("console-1").SetPassword("console-secret").SetProtocolVersion(4))
	if tok := console.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("console connect: %v", tok.Error())
	}
	defer console.Disconnect(50)
	tok := console.Subscribe("urbanwatch/alerts/#", 1, func(_ paho.Client, m paho.Message) {
		var al telemetry.Alert
		if err := json.Unmarshal(m.Payload(), &al); err != nil {
			t.Errorf("alert payload %s: %v", m.Payload(), err)
			return
		}
		if m.Topic() != al.Topic() {
			t.Errorf("alert %s on topic %s", al.ID, m.Topic())
		}
		got <- al
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	// An operator may not read device topics.
	if tok := console.Subscribe("trucks/T1/gps", 1, nil); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		if st, ok := tok.(*paho.SubscribeToken); ok && st.Result()["trucks/T1/gps"] != 0x80 {
			t.Fatalf("operator subscribed to a device topic: %v", st.Result())
		}
	}

	truck := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + a.MQTTAddr()).SetClientID("T1").
		SetUsername("T1").SetPassword(secretOf(registry, "T1")).SetProtocolVersion(4))
	if tok := truck.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("truck connect: %v", tok.Error())
	}
	defer truck.Disconnect(50)
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	for _, r := range uncoveredTrip(start) {
		var topic, payload string
		if r.Kind == telemetry.KindGPS {
			topic = "trucks/T1/gps"
			payload = fmt.Sprintf(`{"ts":%d,"seq":%d,"lat":%.7f,"lon":%.7f,"speed_kmh":%g,"heading":90,"sats":10,"valid":true}`,
				r.TS.UnixMilli(), r.Seq, r.Fix.Lat, r.Fix.Lon, r.Fix.SpeedKmh)
		} else {
			topic = "trucks/T1/sensors"
			payload = fmt.Sprintf(`{"ts":%d,"seq":%d,"cover":%q,"body":"down","load_kg":%g}`,
				r.TS.UnixMilli(), r.Seq, r.Sensors.Cover.String(), r.Sensors.LoadKg)
		}
		if tok := truck.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	var events []string
	for len(events) < 2 {
		select {
		case al := <-got:
			events = append(events, fmt.Sprintf("%s %s %s v%d", al.Rule, al.State, al.Subject.ID, al.Version))
			if al.Subject.CompanyName != "潍坊测试运输有限公司" || al.Subject.Device != "T1" {
				t.Errorf("subject %+v", al.Subject)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("alerts received: %q", events)
		}
	}
	want := []string{"uncovered_load firing 鲁G·A0001 v1", "uncovered_load resolved 鲁G·A0001 v2"}
	if !slices.Equal(events, want) {
		t.Fatalf("alerts %q, want %q", events, want)
	}
}
