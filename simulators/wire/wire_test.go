package wire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// ts0 is 2026-11-24 22:10:05.250 in Weifang (UTC+8).
var ts0 = time.Date(2026, 11, 24, 14, 10, 5, 250_000_000, time.UTC)

func TestGolden(t *testing.T) {
	hdr := telemetry.Header{Seq: 42, TS: ts0}
	cases := []struct {
		name string
		rec  telemetry.Record
		form TSForm
		want string
	}{
		{"gps rfc3339", telemetry.Record{Kind: telemetry.KindGPS, Header: hdr,
			Fix: telemetry.Fix{Lat: 36.7101234, Lon: 119.16, SpeedKmh: 32.46, Heading: 270, Sats: 9, Valid: true}},
			RFC3339, `{"ts":"2026-11-24T22:10:05.250+08:00","seq":42,"lat":36.710123,"lon":119.160000,"speed_kmh":32.5,"heading":270.0,"sats":9,"valid":true}`},
		{"gps unixms invalid", telemetry.Record{Kind: telemetry.KindGPS, Header: hdr,
			Fix: telemetry.Fix{Lat: 36.7, Lon: 119.1, SpeedKmh: -0.01, Heading: 0, Sats: 2}},
			UnixMilli, `{"ts":1795529405250,"seq":42,"lat":36.700000,"lon":119.100000,"speed_kmh":0.0,"heading":0.0,"sats":2,"valid":false}`},
		{"gps heading wraps", telemetry.Record{Kind: telemetry.KindGPS, Header: hdr,
			Fix: telemetry.Fix{Lat: 36.7, Lon: 119.1, SpeedKmh: 20, Heading: 359.97, Sats: 7, Valid: true}},
			UnixMilli, `{"ts":1795529405250,"seq":42,"lat":36.700000,"lon":119.100000,"speed_kmh":20.0,"heading":0.0,"sats":7,"valid":true}`},
		{"gps heading negative", telemetry.Record{Kind: telemetry.KindGPS, Header: hdr,
			Fix: telemetry.Fix{Lat: 36.7, Lon: 119.1, SpeedKmh: 20, Heading: -90, Sats: 7, Valid: true}},
			UnixMilli, `{"ts":1795529405250,"seq":42,"lat":36.700000,"lon":119.100000,"speed_kmh":20.0,"heading":270.0,"sats":7,"valid":true}`},
		{"sensors with load", telemetry.Record{Kind: telemetry.KindSensors, Header: hdr,
			Sensors: telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyDown, LoadKg: 18499.6, HasLoad: true}},
			RFC3339, `{"ts":"2026-11-24T22:10:05.250+08:00","seq":42,"cover":"closed","body":"down","load_kg":18500}`},
		{"sensors without load", telemetry.Record{Kind: telemetry.KindSensors, Header: hdr,
			Sensors: telemetry.SensorState{Cover: telemetry.CoverOpen, Body: telemetry.BodyRaised, LoadKg: 900}},
			UnixMilli, `{"ts":1795529405250,"seq":42,"cover":"open","body":"raised"}`},
		{"sensors fault", telemetry.Record{Kind: telemetry.KindSensors, Header: hdr,
			Sensors: telemetry.SensorState{Cover: telemetry.CoverFault, Body: telemetry.BodyDown, HasLoad: true, LoadKg: -3}},
			RFC3339, `{"ts":"2026-11-24T22:10:05.250+08:00","seq":42,"cover":"fault","body":"down","load_kg":0}`},
		{"rain", telemetry.Record{Kind: telemetry.KindRain, Header: hdr,
			Rain: telemetry.RainReading{MM: 0.4000001, IntervalS: 60}},
			RFC3339, `{"ts":"2026-11-24T22:10:05.250+08:00","seq":42,"mm":0.4,"interval_s":60}`},
		{"rain fractional interval", telemetry.Record{Kind: telemetry.KindRain, Header: hdr,
			Rain: telemetry.RainReading{MM: 0, IntervalS: 0.05}},
			UnixMilli, `{"ts":1795529405250,"seq":42,"mm":0.0,"interval_s":0.05}`},
		{"depth", telemetry.Record{Kind: telemetry.KindDepth, Header: hdr,
			Depth: telemetry.DepthReading{DepthCM: 12.46}},
			UnixMilli, `{"ts":1795529405250,"seq":42,"depth_cm":12.5}`},
		{"depth negative zero", telemetry.Record{Kind: telemetry.KindDepth, Header: hdr,
			Depth: telemetry.DepthReading{DepthCM: -0.04}},
			RFC3339, `{"ts":"2026-11-24T22:10:05.250+08:00","seq":42,"depth_cm":0.0}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(Append(nil, &c.rec, c.form))
			if got != c.want {
				t.Fatalf("\n got %s\nwant %s", got, c.want)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(got), &m); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
		})
	}
}

func TestTSRoundTrip(t *testing.T) {
	b := AppendTS(nil, ts0, RFC3339)
	got, err := time.Parse(time.RFC3339Nano, string(b[1:len(b)-1]))
	if err != nil || !got.Equal(ts0) {
		t.Fatalf("parse %s: %v %v", b, got, err)
	}
	if s := string(AppendTS(nil, ts0, UnixMilli)); s != "1795529405250" {
		t.Fatalf("unix ms %s", s)
	}
}

func TestUnknownKind(t *testing.T) {
	if b := Append([]byte("x"), &telemetry.Record{}, RFC3339); string(b) != "x" {
		t.Fatalf("got %q", b)
	}
}

func BenchmarkAppendGPS(b *testing.B) {
	r := telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Seq: 1, TS: ts0},
		Fix: telemetry.Fix{Lat: 36.71, Lon: 119.16, SpeedKmh: 30, Heading: 90, Sats: 9, Valid: true}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], &r, RFC3339)
	}
}
