package simulators

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators/wire"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Device id prefixes Run takes its devices from: the demo registry's fleets.
const (
	TruckPrefix = "WF-T" // class trucks: muck trucks
	RainPrefix  = "WF-R" // class gauges: rain gauges
	DepthPrefix = "WF-D" // class gauges: water-depth points
)

// Options configures Run. Zero values take the documented defaults.
type Options struct {
	// Broker is the MQTT broker URL, e.g. "tcp://127.0.0.1:1883". Required
	// unless JT808 is set and no gauges are asked for.
	Broker string
	// JT808, when set, is the JT/T 808 gateway (host:port) the trucks
	// connect to instead of the MQTT broker, as terminals with the default
	// profile (docs/jt808.md); their registry fleet needs jt808.phone_prefix.
	// Gauges still publish over MQTT.
	JT808 string
	// Registry supplies the devices and their secrets (Registry.AllDevices):
	// the first Trucks fleet devices of class trucks whose id starts with
	// TruckPrefix, the first RainGauges and DepthPoints of class gauges with
	// RainPrefix and DepthPrefix. Run fails if it has fewer. Required.
	Registry *config.Registry
	// Trucks, RainGauges and DepthPoints are how many devices to play.
	Trucks, RainGauges, DepthPoints int
	// FixInterval is the truck GPS period (default 1s). A sensors message
	// goes with every 5th fix and whenever cover, body or load change.
	FixInterval time.Duration
	// GaugeInterval is the rain and depth report period (default 60s).
	GaugeInterval time.Duration
	// Duration stops Run after this long; 0 runs until ctx is done.
	Duration time.Duration
	// Seed makes the night reproducible: permits, trip phases, noise, gaps,
	// gauge placement and the storm track.
	Seed int64
	// Storm plays a rainstorm crossing the city (peaks ~1.25 h after the
	// start, over by 3.2 h); otherwise a drizzle under 1 mm/h.
	Storm bool
	// Now is the clock for message timestamps and the models (default
	// time.Now). Pacing uses real time.
	Now func() time.Time
	// Logger receives connect failures (at most one line a second) and the
	// start and end of the run. The zero Logger discards.
	Logger zerolog.Logger
	// Registerer, if not nil, gets the urbanwatch_sim_* metrics.
	Registerer prometheus.Registerer
	// ConnectRate is how many devices connect (or reconnect) per second,
	// default 500, so a large fleet does not stampede the broker.
	ConnectRate int
}

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	var errs []string
	if o.Broker == "" && (o.JT808 == "" || o.RainGauges+o.DepthPoints > 0) {
		errs = append(errs, "Broker is required")
	}
	if o.JT808 != "" && o.FixInterval > 0 && o.FixInterval < time.Second {
		errs = append(errs, "FixInterval under 1s with JT808: JT/T 808 times have one-second resolution")
	}
	if o.Registry == nil {
		errs = append(errs, "Registry is required")
	}
	if o.Trucks < 0 || o.RainGauges < 0 || o.DepthPoints < 0 {
		errs = append(errs, "device counts must not be negative")
	} else if o.Trucks+o.RainGauges+o.DepthPoints == 0 {
		errs = append(errs, "no devices asked for")
	}
	if o.FixInterval < 0 || o.GaugeInterval < 0 || o.Duration < 0 {
		errs = append(errs, "intervals and Duration must not be negative")
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("simulators: invalid options: %s", strings.Join(errs, "; "))
	}
	if o.FixInterval == 0 {
		o.FixInterval = time.Second
	}
	if o.GaugeInterval == 0 {
		o.GaugeInterval = time.Minute
	}
	if o.ConnectRate <= 0 {
		o.ConnectRate = 500
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// credential is a device Run logs in as.
type credential struct{ id, secret string }

// selectDevices takes the asked-for devices from the registry, in registry
// order.
func selectDevices(o Options) (trucks, rain, depth []credential, err error) {
	o.Registry.AllDevices(func(d *config.Device, secret string) {
		if secret == "" {
			return // no derivable secret: cannot log in as it
		}
		c := credential{d.ID, secret}
		switch {
		case d.Class == telemetry.ClassTruck && strings.HasPrefix(d.ID, TruckPrefix) && len(trucks) < o.Trucks:
			trucks = append(trucks, c)
		case d.Class == telemetry.ClassGauge && strings.HasPrefix(d.ID, RainPrefix) && len(rain) < o.RainGauges:
			rain = append(rain, c)
		case d.Class == telemetry.ClassGauge && strings.HasPrefix(d.ID, DepthPrefix) && len(depth) < o.DepthPoints:
			depth = append(depth, c)
		}
	})
	var errs []error
	short := func(got, want int, what, class, prefix string) {
		if got < want {
			errs = append(errs, fmt.Errorf("%d %s asked, registry has %d fleet devices of class %s with id prefix %q", want, what, got, class, prefix))
		}
	}
	short(len(trucks), o.Trucks, "trucks", "trucks", TruckPrefix)
	short(len(rain), o.RainGauges, "rain gauges", "gauges", RainPrefix)
	short(len(depth), o.DepthPoints, "depth points", "gauges", DepthPrefix)
	if len(errs) > 0 {
		return nil, nil, nil, fmt.Errorf("simulators: not enough devices: %w", errors.Join(errs...))
	}
	return trucks, rain, depth, nil
}

// Per-device variety, by index within the device's kind: one truck in five
// and one gauge in three stamp ts as unix milliseconds, the rest RFC 3339;
// one truck in four has no load sensor.
func truckTSForm(i int) wire.TSForm {
	if i%5 == 4 {
		return wire.UnixMilli
	}
	return wire.RFC3339
}

func gaugeTSForm(i int) wire.TSForm {
	if i%3 == 2 {
		return wire.UnixMilli
	}
	return wire.RFC3339
}

func truckHasLoad(i int) bool { return i%4 != 3 }
