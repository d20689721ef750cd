package telemetry

import (
	"errors"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 24, 14, 10, 5, 250e6, time.UTC)
	h := Header{Device: "WF-T00001", Seq: 1 << 40, TS: ts, Received: ts.Add(1500 * time.Millisecond), Late: true}
	for _, r := range []Record{
		{Kind: KindGPS, Header: h, Fix: Fix{Lat: 36.71, Lon: 119.16, SpeedKmh: 32.5, Heading: 270, Sats: 9, Valid: true}},
		{Kind: KindGPS, Header: Header{Device: "x", TS: ts, Received: ts}, Fix: Fix{Lat: -90, Lon: 180}},
		{Kind: KindSensors, Header: h, Sensors: SensorState{Cover: CoverOpen, Body: BodyRaised, LoadKg: 18500, HasLoad: true}},
		{Kind: KindSensors, Header: h, Sensors: SensorState{Cover: CoverFault, Body: BodyDown}},
		{Kind: KindRain, Header: h, Rain: RainReading{MM: 0.4, IntervalS: 60}},
		{Kind: KindDepth, Header: h, Depth: DepthReading{DepthCM: 27.5}},
	} {
		b := r.AppendBinary(nil)
		var got Record
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: %v", r.String(), err)
		}
		if !got.TS.Equal(r.TS) || !got.Received.Equal(r.Received) {
			t.Errorf("%s: times %v %v", r.String(), got.TS, got.Received)
		}
		got.TS, got.Received, r.TS, r.Received = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if got != r {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
		// Every truncation is an error, never a panic or a wrong record.
		for i := 0; i < len(b); i++ {
			var x Record
			if err := x.UnmarshalBinary(b[:i]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s truncated at %d: err %v", r.Kind, i, err)
			}
		}
	}
}

func TestCodecRejectsUnknownVersionAndKind(t *testing.T) {
	r := Record{Kind: KindDepth, Header: Header{Device: "d", TS: time.Unix(1, 0), Received: time.Unix(1, 0)}}
	b := r.AppendBinary(nil)
	b[0] = 99
	var x Record
	if err := x.UnmarshalBinary(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("version 99: %v", err)
	}
	b[0], b[1] = codecVersion, 77
	if err := x.UnmarshalBinary(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("kind 77: %v", err)
	}
	if err := x.UnmarshalBinary(append(r.AppendBinary(nil), 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: %v", err)
	}
}

func TestTopicAndNames(t *testing.T) {
	if got := Topic("WF-T1", KindSensors); got != "trucks/WF-T1/sensors" {
		t.Error(got)
	}
	if got := Topic("WF-R1", KindRain); got != "gauges/WF-R1/rain" {
		t.Error(got)
	}
	for _, s := range []string{"closed", "open", "fault"} {
		if c, ok := ParseCover(s); !ok || c.String() != s {
			t.Error(s)
		}
	}
	if _, ok := ParseCover("ajar"); ok {
		t.Error("ajar")
	}
}
