package citytest

import (
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/rules"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// TestRecordsRaiseWhatTheDocSays: one engine over the records raises and
// resolves uncovered_load for every even truck, nothing else, and sees
// every truck's trip.
func TestRecordsRaiseWhatTheDocSays(t *testing.T) {
	const n = 6
	_, city, err := Load(n)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	trips := 0
	eng, err := rules.New(rules.Options{City: city,
		Sink: rules.SinkFunc(func(a *telemetry.Alert) {
			got[a.Rule+"/"+a.Subject.ID+"/"+string(a.State)]++
		}),
		Trips: tripCounter(func(*telemetry.Trip) { trips++ })})
	if err != nil {
		t.Fatal(err)
	}
	recs := Records(n, time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC))
	for i := range recs {
		eng.Process(&recs[i])
	}
	want := map[string]int{}
	for k := 2; k <= n; k += 2 {
		want["uncovered_load/"+Plate(k)+"/firing"] = 1
		want["uncovered_load/"+Plate(k)+"/resolved"] = 1
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d events, want %d", k, got[k], v)
		}
	}
	for k, v := range got {
		if want[k] == 0 {
			t.Errorf("unexpected %s ×%d", k, v)
		}
	}
	if trips != n {
		t.Errorf("%d trips, want %d", trips, n)
	}
}

type tripCounter func(*telemetry.Trip)

func (f tripCounter) Trip(t *telemetry.Trip) { f(t) }
