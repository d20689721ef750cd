package ingest

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

func kindByName(t *testing.T, s string) telemetry.Kind {
	for _, k := range telemetry.Kinds {
		if k.String() == s {
			return k
		}
	}
	t.Fatalf("unknown kind %q", s)
	return 0
}

func TestDecodeCases(t *testing.T) {
	f, err := os.Open("testdata/decode.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		parts := strings.SplitN(text, "|", 3)
		if len(parts) != 3 {
			t.Fatalf("testdata/decode.txt:%d: want kind | want | payload", line)
		}
		kind, want, payload := kindByName(t, strings.TrimSpace(parts[0])), strings.TrimSpace(parts[1]), strings.TrimPrefix(parts[2], " ")
		n++
		_, err := Decode(kind, []byte(payload))
		got := "ok"
		if err != nil {
			rej, ok := err.(*Rejection)
			if !ok {
				t.Errorf("line %d: error is %T, want *Rejection: %v", line, err, err)
				continue
			}
			got = string(rej.Reason)
			if rej.Detail == "" {
				t.Errorf("line %d: rejection %s without a detail", line, rej.Reason)
			}
		}
		if got != want {
			t.Errorf("testdata/decode.txt:%d: %s %s: got %s (%v), want %s", line, kind, payload, got, err, want)
		}
	}
	if n < 40 {
		t.Fatalf("only %d cases read", n)
	}
}

func TestDecodeValues(t *testing.T) {
	rec, err := Decode(telemetry.KindGPS, []byte(`{"ts":"2026-11-24T22:10:05.250+08:00","seq":42,"lat":36.71,"lon":119.16,"speed_kmh":32.5,"heading":270,"sats":9,"valid":true}`))
	if err != nil {
		t.Fatal(err)
	}
	wantTS := time.Date(2026, 11, 24, 14, 10, 5, 250e6, time.UTC)
	if !rec.TS.Equal(wantTS) || rec.Seq != 42 || rec.Fix != (telemetry.Fix{Lat: 36.71, Lon: 119.16, SpeedKmh: 32.5, Heading: 270, Sats: 9, Valid: true}) {
		t.Errorf("got %+v", rec)
	}
	rec, err = Decode(telemetry.KindGPS, []byte(`{"ts":1795615805250,"seq":1,"lat":1,"lon":2,"speed_kmh":0,"heading":0,"sats":0,"valid":false}`))
	if err != nil || !rec.TS.Equal(time.UnixMilli(1795615805250)) {
		t.Errorf("unix ms ts: got %v, %v", rec.TS, err)
	}
	rec, err = Decode(telemetry.KindSensors, []byte(`{"ts":1795615805250,"seq":1,"cover":"open","body":"raised"}`))
	if err != nil || rec.Sensors.HasLoad || rec.Sensors.Cover != telemetry.CoverOpen || rec.Sensors.Body != telemetry.BodyRaised {
		t.Errorf("sensors without load: got %+v, %v", rec.Sensors, err)
	}
	rec, err = Decode(telemetry.KindSensors, []byte(`{"ts":1795615805250,"seq":1,"cover":"closed","body":"down","load_kg":0}`))
	if err != nil || !rec.Sensors.HasLoad || rec.Sensors.LoadKg != 0 {
		t.Errorf("sensors with zero load: got %+v, %v", rec.Sensors, err)
	}
}

func TestParseTopic(t *testing.T) {
	for _, c := range []struct {
		topic  string
		device string
		kind   telemetry.Kind
	}{
		{"trucks/WF-T00001/gps", "WF-T00001", telemetry.KindGPS},
		{"trucks/WF-T00001/sensors", "WF-T00001", telemetry.KindSensors},
		{"gauges/WF-R001/rain", "WF-R001", telemetry.KindRain},
		{"gauges/WF-D001/depth", "WF-D001", telemetry.KindDepth},
		{"trucks/WF-T00001/rain", "", 0},
		{"gauges/WF-R001/gps", "", 0},
		{"trucks//gps", "", 0},
		{"trucks/a/gps/extra", "", 0},
		{"trucks/gps", "", 0},
		{"boats/x/gps", "", 0},
		{"", "", 0},
	} {
		device, kind, rej := ParseTopic(c.topic)
		if c.kind == 0 {
			if rej == nil || rej.Reason != ReasonUnknownTopic {
				t.Errorf("%q: got %v, want unknown_topic", c.topic, rej)
			}
			continue
		}
		if rej != nil || device != c.device || kind != c.kind {
			t.Errorf("%q: got %q %v %v", c.topic, device, kind, rej)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(1), []byte(`{"ts":"2026-11-24T22:10:05+08:00","seq":1,"lat":36.71,"lon":119.16,"speed_kmh":32.5,"heading":270,"sats":9,"valid":true}`))
	f.Add(uint8(2), []byte(`{"ts":1795615805250,"seq":1,"cover":"open","body":"raised","load_kg":3}`))
	f.Add(uint8(3), []byte(`{"ts":1795615805250,"seq":1,"mm":0.2,"interval_s":60}`))
	f.Fuzz(func(t *testing.T, k uint8, payload []byte) {
		kind := telemetry.Kind(k%4 + 1)
		rec, err := Decode(kind, payload)
		if err != nil {
			if _, ok := err.(*Rejection); !ok {
				t.Fatalf("error %T is not a *Rejection", err)
			}
			return
		}
		// Anything accepted must survive the spool encoding unchanged.
		var back telemetry.Record
		if err := back.UnmarshalBinary(rec.AppendBinary(nil)); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
