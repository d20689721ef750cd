package influx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
)

// AggregateOptions says which per-device aggregates Aggregate computes.
type AggregateOptions struct {
	// URL, User, Password, Database and RetentionPolicy are as in
	// ReadOptions.
	URL, User, Password, Database, RetentionPolicy string
	// Measurement and Field name what is aggregated, e.g. gauge_rain mm.
	Measurement, Field string
	// Func is the InfluxQL aggregate: "sum" or "max".
	Func string
	// To ends the last bucket (exclusive, truncated to the second);
	// Bucket is each bucket's width (whole seconds) and N how many
	// buckets lead up to To.
	To     time.Time
	Bucket time.Duration
	N      int
}

// Aggregate returns, per device, the N buckets of o.Func over o.Field in
// [To − N×Bucket, To), oldest first, each ending on To − k×Bucket so the
// last one is exactly the Bucket before To (not a clock-aligned hour). A
// bucket without points is NaN. Devices without any point are absent.
func Aggregate(ctx context.Context, o AggregateOptions) (map[string][]float64, error) {
	if o.URL == "" || o.Database == "" {
		return nil, errors.New("influx: aggregate: URL and Database are required")
	}
	if o.Func != "sum" && o.Func != "max" {
		return nil, fmt.Errorf("influx: aggregate: func %q: want sum or max", o.Func)
	}
	bucket := o.Bucket.Truncate(time.Second)
	if bucket <= 0 || o.N < 1 || o.N > 10_000 {
		return nil, fmt.Errorf("influx: aggregate: want a bucket of at least 1s and 1 to 10000 buckets, got %s × %d", o.Bucket, o.N)
	}
	to := o.To.Truncate(time.Second)
	from := to.Add(-time.Duration(o.N) * bucket)
	// GROUP BY time buckets start at multiples of the bucket since the
	// epoch, moved by the offset: choose it so one boundary falls on To.
	offset := time.Duration(to.UnixNano() % int64(bucket))
	ref := quoteIdent(o.Measurement)
	if o.RetentionPolicy != "" {
		ref = quoteIdent(o.Database) + "." + quoteIdent(o.RetentionPolicy) + "." + ref
	}
	q := fmt.Sprintf(`SELECT %s(%s) FROM %s WHERE time >= %d AND time < %d GROUP BY time(%ds, %ds), "device" fill(none)`,
		o.Func, quoteIdent(o.Field), ref, from.UnixNano(), to.UnixNano(), int64(bucket/time.Second), int64(offset/time.Second))
	res, err := influxQL(ctx, http.MethodGet, o.URL, o.User, o.Password, o.Database, q)
	if err != nil {
		return nil, fmt.Errorf("influx: aggregate %s.%s: %w", o.Measurement, o.Field, err)
	}
	out := make(map[string][]float64, len(res.Series))
	for _, s := range res.Series {
		dev := s.Tags["device"]
		if dev == "" || len(s.Columns) < 2 {
			continue
		}
		vals := make([]float64, o.N)
		for i := range vals {
			vals[i] = math.NaN()
		}
		for _, row := range s.Values {
			if len(row) < 2 {
				continue
			}
			ts, ok := row[0].(string)
			num, ok2 := row[1].(json.Number)
			if !ok || !ok2 {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				continue
			}
			i := int(t.Sub(from) / bucket)
			v, err := num.Float64()
			if err != nil || i < 0 || i >= o.N {
				continue
			}
			vals[i] = v
		}
		out[dev] = vals
	}
	return out, nil
}
