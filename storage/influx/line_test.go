package influx_test

import (
	"math"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

var (
	goldenTS  = time.Unix(1700000000, 123456789)
	goldenRcv = goldenTS.Add(1500 * time.Millisecond)
)

func hdr(device string, seq uint64, late bool) telemetry.Header {
	return telemetry.Header{Device: device, Seq: seq, TS: goldenTS, Received: goldenRcv, Late: late}
}

// goldenLines pairs records with their exact line protocol.
var goldenLines = []struct {
	name string
	rec  telemetry.Record
	want string
}{
	{"gps", telemetry.Record{Kind: telemetry.KindGPS, Header: hdr("T-001", 42, false),
		Fix: telemetry.Fix{Lat: 36.71, Lon: 119.16, SpeedKmh: 42.5, Heading: 90, Sats: 9, Valid: true}},
		`truck_gps,device=T-001 lat=36.71,lon=119.16,speed_kmh=42.5,heading=90,sats=9i,valid=true,seq=42i,late=false,delay_ms=1500i 1700000000123456789`},
	{"gps invalid late", telemetry.Record{Kind: telemetry.KindGPS, Header: hdr("T-002", 7, true),
		Fix: telemetry.Fix{Lat: -0.5, Lon: 1e-7, SpeedKmh: 0, Heading: 359.99, Sats: 0}},
		`truck_gps,device=T-002 lat=-0.5,lon=1e-07,speed_kmh=0,heading=359.99,sats=0i,valid=false,seq=7i,late=true,delay_ms=1500i 1700000000123456789`},
	{"sensors with load", telemetry.Record{Kind: telemetry.KindSensors, Header: hdr("T-001", 43, false),
		Sensors: telemetry.SensorState{Cover: telemetry.CoverOpen, Body: telemetry.BodyRaised, LoadKg: 12500.5, HasLoad: true}},
		`truck_sensors,device=T-001 cover="open",body="raised",load_kg=12500.5,seq=43i,late=false,delay_ms=1500i 1700000000123456789`},
	{"sensors without load", telemetry.Record{Kind: telemetry.KindSensors, Header: hdr("T-001", 44, true),
		Sensors: telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyDown, LoadKg: 99}},
		`truck_sensors,device=T-001 cover="closed",body="down",seq=44i,late=true,delay_ms=1500i 1700000000123456789`},
	{"sensors unknown states", telemetry.Record{Kind: telemetry.KindSensors, Header: hdr("T-001", 45, false)},
		`truck_sensors,device=T-001 cover="unknown",body="unknown",seq=45i,late=false,delay_ms=1500i 1700000000123456789`},
	{"rain", telemetry.Record{Kind: telemetry.KindRain, Header: hdr("G.7_a", 1, false),
		Rain: telemetry.RainReading{MM: 0.2, IntervalS: 300}},
		`gauge_rain,device=G.7_a mm=0.2,interval_s=300,seq=1i,late=false,delay_ms=1500i 1700000000123456789`},
	{"depth", telemetry.Record{Kind: telemetry.KindDepth, Header: hdr("G-8", 2, false),
		Depth: telemetry.DepthReading{DepthCM: 31.25}},
		`gauge_depth,device=G-8 depth_cm=31.25,seq=2i,late=false,delay_ms=1500i 1700000000123456789`},
	{"escaped device", telemetry.Record{Kind: telemetry.KindDepth, Header: hdr("a b,c=d\"e\\f\ng", 3, false),
		Depth: telemetry.DepthReading{DepthCM: 1}},
		`gauge_depth,device=a\ b\,c\=d"e_f_g depth_cm=1,seq=3i,late=false,delay_ms=1500i 1700000000123456789`},
	{"huge and non-finite floats", telemetry.Record{Kind: telemetry.KindRain, Header: hdr("G-9", 4, false),
		Rain: telemetry.RainReading{MM: math.NaN(), IntervalS: 1e21}},
		`gauge_rain,device=G-9 interval_s=1e+21,seq=4i,late=false,delay_ms=1500i 1700000000123456789`},
	{"all floats non-finite", telemetry.Record{Kind: telemetry.KindDepth, Header: hdr("G-9", 5, false),
		Depth: telemetry.DepthReading{DepthCM: math.Inf(1)}},
		`gauge_depth,device=G-9 seq=5i,late=false,delay_ms=1500i 1700000000123456789`},
	{"seq clamped, negative delay", telemetry.Record{Kind: telemetry.KindDepth,
		Header: telemetry.Header{Device: "G-9", Seq: math.MaxUint64, TS: goldenTS, Received: goldenTS.Add(-2500 * time.Millisecond)},
		Depth:  telemetry.DepthReading{DepthCM: 0}},
		`gauge_depth,device=G-9 depth_cm=0,seq=9223372036854775807i,late=false,delay_ms=-2500i 1700000000123456789`},
	{"empty device untagged", telemetry.Record{Kind: telemetry.KindDepth, Header: hdr("", 6, false),
		Depth: telemetry.DepthReading{DepthCM: 2}},
		`gauge_depth depth_cm=2,seq=6i,late=false,delay_ms=1500i 1700000000123456789`},
}

func TestAppendLineGolden(t *testing.T) {
	for _, tc := range goldenLines {
		t.Run(tc.name, func(t *testing.T) {
			got := string(influx.AppendLine([]byte("prefix|"), &tc.rec))
			if want := "prefix|" + tc.want; got != want {
				t.Errorf("AppendLine:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendLineAllocs(t *testing.T) {
	r := goldenLines[0].rec
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = influx.AppendLine(buf[:0], &r) }); n != 0 {
		t.Errorf("AppendLine allocates %v times per call into a large enough buffer, want 0", n)
	}
}

func BenchmarkAppendLine(b *testing.B) {
	r := goldenLines[0].rec
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = influx.AppendLine(buf[:0], &r)
	}
}
