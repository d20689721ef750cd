package telemetry

import "time"

// Trip is one loaded journey of a truck, as the rules engine records it: it
// starts when the truck leaves a site loaded (or becomes loaded outside a
// site) and ends when it unloads, in a disposal site or elsewhere. Trips
// are durable records: reports count violations per 100 trips, and an
// evidence packet cites the trip its alert happened on.
type Trip struct {
	// ID is stable across replay: "{plate}/{departure unix seconds}".
	ID      string `json:"id"`
	Plate   string `json:"plate"`
	Company string `json:"company"`
	Device  string `json:"device"`
	// Permit is the permit in force at departure; "" for none.
	Permit string `json:"permit,omitempty"`
	// Origin is the construction site the truck left loaded; "" when it
	// was loaded elsewhere.
	Origin string `json:"origin,omitempty"`
	// Disposal is the site it unloaded in; "" when it unloaded outside
	// every disposal site (or the trip is still open).
	Disposal   string    `json:"disposal,omitempty"`
	DepartedAt time.Time `json:"departed_at"`
	// ArrivedAt is zero while the trip is open.
	ArrivedAt time.Time `json:"arrived_at,omitzero"`
	DistanceM float64   `json:"distance_m"`
	DurationS float64   `json:"duration_s"`
	// Violations are the ids of the alerts raised during the trip.
	Violations []string `json:"violations,omitempty"`
}
