package simulators

import (
	"math"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// position returns where the truck is and which way it points.
func (t *truck) position() (xy, float64) {
	if t.phase != phDriving && t.phase != phRoadDump {
		return t.at, t.hdg
	}
	p, k := t.rt.at(t.s)
	if t.v > 0.5 {
		t.hdg = bearing(t.rt.pts[k-1], t.rt.pts[k])
	}
	if t.inj != nil {
		p = p.add(t.inj.offset())
	}
	return p, t.hdg
}

// truePos is where the truck is, without GPS noise and without touching any
// state.
func (t *truck) truePos() xy {
	if t.phase != phDriving && t.phase != phRoadDump {
		return t.at
	}
	p, _ := t.rt.at(t.s)
	if t.inj != nil {
		p = p.add(t.inj.offset())
	}
	return p
}

// fix makes the terminal's GPS report at now: the true position plus
// correlated noise of t.sigma metres, satellites wandering in 6–14, and now
// and then an invalid fix (few satellites, last valid position, no speed).
func (t *truck) fix(now time.Time) telemetry.Record {
	p, hdg := t.position()
	// AR(1) noise: drifts like a real receiver instead of jumping each second.
	const rho = 0.8
	k := t.sigma * math.Sqrt(1-rho*rho)
	t.nx = rho*t.nx + k*t.rng.NormFloat64()
	t.ny = rho*t.ny + k*t.rng.NormFloat64()
	lat, lon := p.add(xy{t.nx, t.ny}).latLon()

	if t.rng.Float64() < 0.1 {
		t.sats += t.rng.IntN(3) - 1
	}
	t.sats = int(clamp(float64(t.sats), 6, 14))
	f := telemetry.Fix{Lat: lat, Lon: lon, Sats: t.sats, Valid: true, Heading: hdg}
	if t.v > 0 {
		f.SpeedKmh = math.Max(0, t.v*3.6+0.3*t.rng.NormFloat64())
		f.Heading = math.Mod(hdg+1.5*t.rng.NormFloat64()+360, 360)
	}
	if t.rng.Float64() < invalidFixP || t.gap > 0 && t.rng.Float64() < 0.2 {
		f.Valid, f.Sats, f.SpeedKmh = false, t.rng.IntN(4), 0
		if t.lastGood != [2]float64{} {
			f.Lat, f.Lon = t.lastGood[0], t.lastGood[1]
		}
	} else {
		t.lastGood = [2]float64{lat, lon}
	}
	r := telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{Seq: t.gpsSeq, TS: now}, Fix: f}
	t.gpsSeq++
	t.fixes++
	return r
}

// sensors returns the sensors message at now and whether the terminal sends
// it: with the first fix, every sensorsEvery-th fix, and whenever cover or
// body change or the load moves by loadChangeKg.
func (t *truck) sensors(now time.Time) (telemetry.Record, bool) {
	st := telemetry.SensorState{Cover: t.cover, Body: t.body, HasLoad: t.hasLoad}
	if t.hasLoad {
		kg := t.load
		if t.glitchLeft > 0 {
			kg *= 1 - t.glitchF // the load cell reads low; the load is all there
		}
		st.LoadKg = math.Max(0, math.Round((kg+40*t.rng.NormFloat64())/10)*10)
	}
	changed := !t.hasSent || st.Cover != t.sent.Cover || st.Body != t.sent.Body ||
		t.hasLoad && math.Abs(st.LoadKg-t.sent.LoadKg) >= loadChangeKg
	if !changed && (t.fixes-1)%sensorsEvery != 0 {
		return telemetry.Record{}, false
	}
	t.sent, t.hasSent = st, true
	r := telemetry.Record{Kind: telemetry.KindSensors, Header: telemetry.Header{Seq: t.sensSeq, TS: now}, Sensors: st}
	t.sensSeq++
	return r, true
}
