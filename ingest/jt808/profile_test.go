package jt808

import (
	"fmt"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

var sprintf = fmt.Sprintf

func TestProfiles(t *testing.T) {
	at := time.Date(2026, 11, 24, 22, 10, 5, 0, chinaTime)
	def := DefaultProfile()
	bits := Profile{Cover: Source{Kind: FromStatus, ID: 22, Invert: true}, Body: Source{Kind: FromStatus, ID: 0},
		LoadStateKg: &[3]float64{0, 8000, 16000}}
	for _, c := range []struct {
		name    string
		p       Profile
		status  uint32
		extras  []Extra
		want    telemetry.SensorState
		sensors bool
	}{
		{"default closed down", def, 0, []Extra{{0xE1, []byte{0}}, {0xE2, []byte{0}}},
			telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyDown}, true},
		{"default open raised load", def, 0, []Extra{{0xE1, []byte{1}}, {0xE2, []byte{1}}, {0xE3, []byte{0x27, 0x10}}},
			telemetry.SensorState{Cover: telemetry.CoverOpen, Body: telemetry.BodyRaised, LoadKg: 10000, HasLoad: true}, true},
		{"default fault", def, 0, []Extra{{0xE1, []byte{7}}, {0xE2, []byte{0}}},
			telemetry.SensorState{Cover: telemetry.CoverFault, Body: telemetry.BodyDown}, true},
		{"default without cover item", def, 0, []Extra{{0xE2, []byte{0}}}, telemetry.SensorState{}, false},
		{"default body out of range", def, 0, []Extra{{0xE1, []byte{0}}, {0xE2, []byte{5}}}, telemetry.SensorState{}, false},
		{"default load 5 bytes ignored", def, 0, []Extra{{0xE1, []byte{0}}, {0xE2, []byte{0}}, {0xE3, []byte{0, 0, 0, 0, 1}}},
			telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyDown}, true},
		{"bits inverted cover set = closed, full", bits, 1<<22 | 1 | 3<<8, nil,
			telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyRaised, LoadKg: 16000, HasLoad: true}, true},
		{"bits cover clear = open, half", bits, 1 << 8, nil,
			telemetry.SensorState{Cover: telemetry.CoverOpen, Body: telemetry.BodyDown, LoadKg: 8000, HasLoad: true}, true},
		{"bits reserved load state", bits, 2 << 8, nil,
			telemetry.SensorState{Cover: telemetry.CoverOpen, Body: telemetry.BodyDown}, true},
		{"no cover source", Profile{Body: def.Body}, 0, []Extra{{0xE2, []byte{0}}}, telemetry.SensorState{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := Location{Status: c.status | StatusPositioned, Time: at, Extras: c.extras}
			g, s, ok := c.p.Records(&l)
			if g.Kind != telemetry.KindGPS || g.Seq != uint64(at.Unix()) || !g.Fix.Valid {
				t.Fatalf("gps %+v", g)
			}
			if ok != c.sensors || ok && (s.Sensors != c.want || s.Seq != g.Seq || s.Kind != telemetry.KindSensors) {
				t.Fatalf("sensors %v %+v, want %v %+v", ok, s.Sensors, c.sensors, c.want)
			}
		})
	}
	// South and west from the status bits; no fix flag, no satellites.
	l, _ := ParseLocation(AppendLocation(nil, &Location{Status: StatusSouth | StatusWest, Lat: 33.5, Lon: 70.25, Time: at}))
	g, _, _ := def.Records(&l)
	if g.Fix.Lat != -33.5 || g.Fix.Lon != -70.25 || g.Fix.Valid || g.Fix.Sats != 0 {
		t.Fatalf("fix %+v", g.Fix)
	}
	for _, bad := range []Profile{
		{Cover: Source{Kind: FromExtra, ID: 0x31}},
		{Body: Source{Kind: FromStatus, ID: 2}},
		{Body: Source{Kind: FromStatus, ID: 9}},
		{Body: Source{Kind: FromStatus, ID: 32}},
		{LoadExtra: 0xE3},
		{LoadExtra: 0x10, LoadScale: 1},
	} {
		if bad.Validate() == nil {
			t.Errorf("profile %+v validated", bad)
		}
	}
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
}
