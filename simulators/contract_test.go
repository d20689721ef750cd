package simulators

import (
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/simulators/wire"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// TestPayloadsPassIngestDecoder runs an hour of simulated trucks and five
// hours of storm gauges through urbanwatch's own decoder (the contract of
// docs/protocol.md), in both ts forms.
func TestPayloadsPassIngestDecoder(t *testing.T) {
	w := mustWorld()
	n := 0
	check := func(r telemetry.Record, f wire.TSForm) {
		b := wire.Append(nil, &r, f)
		got, err := ingest.Decode(r.Kind, b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.Seq != r.Seq || !got.TS.Equal(r.TS.Truncate(time.Millisecond)) {
			t.Fatalf("%s: decoded %+v", b, got)
		}
		n++
	}
	for i := range 10 {
		_, steps := simulate(w, 1, i, i%2 == 0, time.Hour)
		for _, s := range steps {
			for _, r := range s.out {
				check(r, wire.TSForm(i%2))
			}
		}
	}
	f := newField(1, true)
	for _, g := range newRainGauges(20, 1, f, night0, time.Minute) {
		for k := 1; k < 300; k++ {
			for _, r := range g.Step(night0.Add(time.Duration(k)*time.Minute), nil) {
				check(r, wire.TSForm(k%2))
			}
		}
	}
	for _, d := range newDepthPoints(20, 1, w, f, night0, time.Minute) {
		for k := 1; k < 300; k++ {
			for _, r := range d.Step(night0.Add(time.Duration(k)*time.Minute), nil) {
				check(r, wire.TSForm(k%2))
			}
		}
	}
	t.Logf("%d messages decoded", n)
}
