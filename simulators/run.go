package simulators

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/urbanwatch/urbanwatch/internal/ratelog"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// fdReserve is the open files a Run needs besides its devices' sockets.
const fdReserve = 64

// runner is one Run.
type runner struct {
	o        Options
	plainTCP bool // the broker is tcp:// or mqtt://: dial it with buffered reads
	m        *metrics
	pacer    *pacer
	logs     *logLimiter
}

// Run plays the devices until ctx is done or o.Duration has passed, then
// disconnects them and returns nil. It returns an error only for bad options,
// a registry without enough devices, or metrics that cannot be registered;
// broker trouble is retried and logged, never fatal.
//
// Every device has its own paho MQTT client (client id and username = device
// id, password = its fleet secret), connected at o.ConnectRate per second and
// publishing QoS 1 on its own topics (telemetry.Topic). Devices are stepped
// in groups of 250 on one ticker each: trucks every o.FixInterval, gauges and
// depth points every o.GaugeInterval. Message timestamps come from o.Now.
func Run(ctx context.Context, o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	trucks, rain, depth, err := selectDevices(o)
	if err != nil {
		return err
	}
	w, err := theWorld()
	if err != nil {
		return fmt.Errorf("simulators: synthetic city: %w", err)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return err
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	r := &runner{o: o, m: m, pacer: newPacer(o.ConnectRate), plainTCP: plainTCP(o.Broker),
		logs: &logLimiter{log: o.Logger, limit: ratelog.Limiter{Every: time.Second}}}

	start := o.Now()
	field := newField(o.Seed, o.Storm)
	var truckDevs, gaugeDevs []*simDevice
	var jtModels []model
	for i, c := range trucks {
		t := newTruck(w, o.Seed, i, truckHasLoad(i))
		if o.JT808 != "" {
			jtModels = append(jtModels, t)
			continue
		}
		truckDevs = append(truckDevs, newSimDevice(r.newConn(ctx, c), t, truckTSForm(i), telemetry.KindGPS, telemetry.KindSensors))
	}
	var jtTrucks []jt808Truck
	if o.JT808 != "" {
		if jtTrucks, err = jt808Trucks(o.Registry, trucks, jtModels); err != nil {
			return err
		}
	}
	for i, g := range newRainGauges(len(rain), o.Seed, field, start, o.GaugeInterval) {
		gaugeDevs = append(gaugeDevs, newSimDevice(r.newConn(ctx, rain[i]), g, gaugeTSForm(i), telemetry.KindRain))
	}
	for i, d := range newDepthPoints(len(depth), o.Seed, w, field, start, o.GaugeInterval) {
		gaugeDevs = append(gaugeDevs, newSimDevice(r.newConn(ctx, depth[i]), d, gaugeTSForm(len(rain)+i), telemetry.KindDepth))
	}
	all := append(append([]*simDevice(nil), gaugeDevs...), truckDevs...)

	// One socket per device: a fleet above the open-file limit cannot all
	// connect (the rest retry forever with "too many open files").
	if limit, need := openFileLimit(), uint64(len(all)+fdReserve); limit > 0 && limit < need {
		o.Logger.Warn().Uint64("open_file_limit", limit).Int("devices", len(all)).
			Msg("open-file limit below one socket per device: raise ulimit -n or some devices will never connect")
	}
	o.Logger.Info().Str("broker", o.Broker).Int("trucks", len(trucks)).Int("rain_gauges", len(rain)).
		Int("depth_points", len(depth)).Bool("storm", o.Storm).Int64("seed", o.Seed).
		Dur("fix_interval", o.FixInterval).Dur("gauge_interval", o.GaugeInterval).Msg("simulation starting")

	var wg sync.WaitGroup
	groups := append(makeGroups(truckDevs, o.FixInterval), makeGroups(gaugeDevs, o.GaugeInterval)...)
	for _, g := range groups {
		wg.Go(func() { r.runGroup(ctx, g) })
	}
	wg.Go(func() { r.connectAll(ctx, all) })
	for i, t := range jtTrucks {
		wg.Go(func() { r.runJT808Truck(ctx, t, o.FixInterval*time.Duration(i)/time.Duration(len(jtTrucks))) })
	}
	wg.Wait()
	for _, g := range groups {
		r.reap(g, false)
	}
	r.disconnectAll(all)
	for _, g := range groups {
		r.reap(g, true) // what the disconnect cut short is not a publish error
	}
	o.Logger.Info().Dur("ran", o.Now().Sub(start)).Msg("simulation stopped")
	return nil
}
