package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/rules/geo"
	"github.com/urbanwatch/urbanwatch/storage/influx"
)

// TestTripsReachInfluxDB: a truck loads in the construction site, drives
// to the disposal site and tips there; the rules engine's trip goes through
// the alert journal into InfluxDB's truck_trip measurement, once, and does
// not disturb the alert consumers.
func TestTripsReachInfluxDB(t *testing.T) {
	db := testenv.Influxd(t)
	a, _ := startAppCity(t, e2eRegistry, db.URL(), nil, e2eCity(1))
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	seq := map[string]int{}
	send := func(kind string, payload string) {
		t.Helper()
		seq[kind]++
		out := a.Ingester().Handle("T01", "trucks/T01/"+kind, fmt.Appendf(nil, payload, seq[kind]))
		if out.Status != ingest.Accepted {
			t.Fatalf("%s: %+v", kind, out)
		}
	}
	at := start
	fixAt := func(x float64, speed float64) {
		lon, lat := plane.Unproject(geo.XY{X: x})
		send("gps", fmt.Sprintf(`{"ts":%d,"seq":%%d,"lat":%.7f,"lon":%.7f,"speed_kmh":%g,"heading":90,"sats":10,"valid":true}`,
			at.UnixMilli(), lat, lon, speed))
	}
	sensors := func(body string, kg float64) {
		send("sensors", fmt.Sprintf(`{"ts":%d,"seq":%%d,"cover":"closed","body":%q,"load_kg":%g}`, at.UnixMilli(), body, kg))
	}
	sensors("down", 200)
	fixAt(0, 0)
	at = at.Add(5 * time.Second)
	sensors("down", 18000) // loaded in the site
	for x := 0.0; x <= 4000; x += 100 {
		at = at.Add(10 * time.Second)
		fixAt(x, 36)
	}
	at = at.Add(10 * time.Second)
	sensors("raised", 500) // tipped in the disposal site
	fixAt(4000, 0)
	testenv.WaitFor(t, 30*time.Second, func() bool {
		n, err := influx.CountPoints(context.Background(), db.URL(), testenv.TestDatabase, influx.TripMeasurement, "distance_m")
		return err == nil && n == 1
	}, "one truck_trip point in InfluxDB")
	alerts, _ := a.Alerting().List(alertingFilterAll())
	if len(alerts) != 0 {
		t.Fatalf("a closed, permitted trip raised %d alerts: %+v", len(alerts), alerts[0])
	}
}
