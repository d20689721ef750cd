package influx

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// DefaultReadWindow is the window ReadRecords reads at a time when
// ReadOptions.Window is zero.
const DefaultReadWindow = time.Hour

// DefaultReadPageRows is how many points one /query returns at most when
// ReadOptions.PageRows is zero, which keeps each response well under the
// 16 MiB a response may have.
const DefaultReadPageRows = 10_000

// ReadOptions says what ReadRecords reads and from where.
type ReadOptions struct {
	// URL is the InfluxDB 1.x base URL, e.g. http://127.0.0.1:8086.
	URL string
	// User and Password are sent as basic auth when User is not empty.
	User, Password string
	// Database holds the four measurements (docs/data-model.md).
	Database string
	// RetentionPolicy, if set, qualifies the measurements; empty reads
	// the database's default retention policy.
	RetentionPolicy string
	// From and To bound the device timestamps read: From ≤ ts < To.
	From, To time.Time
	// Window is how much event time is read, held and sorted at once;
	// zero means DefaultReadWindow. Memory grows with the points in one
	// window.
	Window time.Duration
	// PageRows is how many points one query returns at most; zero means
	// DefaultReadPageRows.
	PageRows int
	// Devices, if not empty, limits the read to these devices; Kinds, if
	// not empty, to these kinds. Both are empty for a whole-city replay.
	Devices []string
	Kinds   []telemetry.Kind
	// Skipped, if not nil, is told about each point that cannot be turned
	// into a Record (no device tag, no seq, a field of the wrong type):
	// such points were not written by urbanwatch and are left out.
	Skipped func(measurement string, ts time.Time, err error)
}

// ReadRecords reads the records stored in the truck_gps, truck_sensors,
// gauge_rain and gauge_depth measurements with From ≤ ts < To and calls fn
// with each, as a telemetry.Record rebuilt from the data model: Device from
// the device tag, TS from the point's time, Received = TS + delay_ms, Seq,
// Late and the kind's fields.
//
// Records are read window by window (Window of device time, starting at
// From) and, within a window, passed to fn in arrival order: by Received,
// ties by TS, then device, kind and seq, so the order is deterministic.
// Arrival order across windows is approximated by the window: a record that
// arrived late (after a tunnel, a back-fill) is delivered with the window of
// its own timestamp, before records of the next window that arrived earlier.
// Only one window is held in memory at a time.
//
// fn must not keep the *Record after it returns. ReadRecords stops at the
// first error fn returns and returns it unchanged; a query or context error
// is returned wrapped with the window it happened in.
func ReadRecords(ctx context.Context, o ReadOptions, fn func(*telemetry.Record) error) error {
	if o.URL == "" || o.Database == "" {
		return errors.New("influx: read: URL and Database are required")
	}
	if o.From.IsZero() || o.To.IsZero() || !o.From.Before(o.To) {
		return fmt.Errorf("influx: read: want From before To, got %s and %s",
			o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	if o.Window <= 0 {
		o.Window = DefaultReadWindow
	}
	if o.PageRows <= 0 {
		o.PageRows = DefaultReadPageRows
	}
	var recs []telemetry.Record
	for start := o.From; start.Before(o.To); start = start.Add(o.Window) {
		end := start.Add(o.Window)
		if end.After(o.To) {
			end = o.To
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("influx: read: %w", err)
		}
		recs = recs[:0]
		for _, k := range telemetry.Kinds {
			if len(o.Kinds) > 0 && !slices.Contains(o.Kinds, k) {
				continue
			}
			var err error
			recs, err = readKind(ctx, &o, k, start, end, recs)
			if err != nil {
				return fmt.Errorf("influx: read %s [%s, %s): %w", k.Measurement(),
					start.Format(time.RFC3339), end.Format(time.RFC3339), err)
			}
		}
		slices.SortStableFunc(recs, arrivalOrder)
		for i := range recs {
			if err := fn(&recs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// arrivalOrder orders records by Received, then TS, device, kind and seq.
func arrivalOrder(a, b telemetry.Record) int {
	if c := a.Received.Compare(b.Received); c != 0 {
		return c
	}
	if c := a.TS.Compare(b.TS); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Seq, b.Seq))
}

// readKind appends the records of kind k with start ≤ ts < end to recs. It
// pages by time: a full page is cut before its last timestamp, which the
// next page starts at, so points sharing a timestamp are never split; a page
// that is all one timestamp is continued with OFFSET.
func readKind(ctx context.Context, o *ReadOptions, k telemetry.Kind, start, end time.Time, recs []telemetry.Record) ([]telemetry.Record, error) {
	from := measurementRef(o, k)
	lo, hi := start.UnixNano(), end.UnixNano()
	for lo < hi {
		q := fmt.Sprintf("SELECT * FROM %s WHERE time >= %d AND time < %d%s ORDER BY time ASC LIMIT %d",
			from, lo, hi, deviceFilter(o.Devices), o.PageRows)
		rows, err := queryRows(ctx, o, q)
		if err != nil {
			return recs, err
		}
		if len(rows.values) < o.PageRows {
			return rows.appendRecords(o, k, rows.values, recs), nil
		}
		last, err := rows.time(rows.values[len(rows.values)-1])
		if err != nil {
			return recs, err
		}
		first, err := rows.time(rows.values[0])
		if err != nil {
			return recs, err
		}
		if first.UnixNano() == last.UnixNano() {
			// One timestamp fills the page: read it all by offset.
			recs, err = readInstant(ctx, o, k, from, last.UnixNano(), recs)
			if err != nil {
				return recs, err
			}
			lo = last.UnixNano() + 1
			continue
		}
		cut := len(rows.values)
		for cut > 0 {
			t, err := rows.time(rows.values[cut-1])
			if err != nil {
				return recs, err
			}
			if t.UnixNano() != last.UnixNano() {
				break
			}
			cut--
		}
		recs = rows.appendRecords(o, k, rows.values[:cut], recs)
		lo = last.UnixNano()
	}
	return recs, nil
}

// readInstant appends every point of kind k at exactly ts, page by page.
func readInstant(ctx context.Context, o *ReadOptions, k telemetry.Kind, from string, ts int64, recs []telemetry.Record) ([]telemetry.Record, error) {
	for offset := 0; ; offset += o.PageRows {
		q := fmt.Sprintf("SELECT * FROM %s WHERE time = %d%s LIMIT %d OFFSET %d", from, ts, deviceFilter(o.Devices), o.PageRows, offset)
		rows, err := queryRows(ctx, o, q)
		if err != nil {
			return recs, err
		}
		recs = rows.appendRecords(o, k, rows.values, recs)
		if len(rows.values) < o.PageRows {
			return recs, nil
		}
	}
}

// deviceFilter is the WHERE clause's condition on the device tag, with a
// leading AND; "" for every device.
func deviceFilter(devices []string) string {
	if len(devices) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" AND (")
	for i, d := range devices {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString(`"device" = `)
		b.WriteString(quoteString(d))
	}
	b.WriteString(")")
	return b.String()
}

// measurementRef is the FROM clause naming k's measurement.
func measurementRef(o *ReadOptions, k telemetry.Kind) string {
	if o.RetentionPolicy == "" {
		return quoteIdent(k.Measurement())
	}
	return quoteIdent(o.Database) + "." + quoteIdent(o.RetentionPolicy) + "." + quoteIdent(k.Measurement())
}

// rowSet is one query's points: column positions and rows.
type rowSet struct {
	col    map[string]int
	values [][]any
}

// queryRows runs q and returns its single series (SELECT * without GROUP BY
// returns tags as columns, so there is one).
func queryRows(ctx context.Context, o *ReadOptions, q string) (*rowSet, error) {
	res, err := influxQL(ctx, http.MethodGet, o.URL, o.User, o.Password, o.Database, q)
	if err != nil {
		return nil, err
	}
	rs := &rowSet{col: map[string]int{}}
	if len(res.Series) == 0 {
		return rs, nil
	}
	if len(res.Series) > 1 {
		return nil, fmt.Errorf("query %q: %d series, want 1", q, len(res.Series))
	}
	s := res.Series[0]
	for i, c := range s.Columns {
		rs.col[c] = i
	}
	if _, ok := rs.col["time"]; !ok {
		return nil, fmt.Errorf("query %q: no time column in %v", q, s.Columns)
	}
	rs.values = s.Values
	return rs, nil
}

// time returns a row's timestamp.
func (rs *rowSet) time(row []any) (time.Time, error) {
	v := rs.value(row, "time")
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("time is %T, want an RFC 3339 string", v)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", s, err)
	}
	return t, nil
}

// value returns a row's value of column name, nil when absent or null.
func (rs *rowSet) value(row []any, name string) any {
	i, ok := rs.col[name]
	if !ok || i >= len(row) {
		return nil
	}
	return row[i]
}

// appendRecords turns rows into records of kind k, appended to recs; rows
// that do not make a record go to o.Skipped.
func (rs *rowSet) appendRecords(o *ReadOptions, k telemetry.Kind, rows [][]any, recs []telemetry.Record) []telemetry.Record {
	for _, row := range rows {
		rec, err := rs.record(k, row)
		if err != nil {
			if o.Skipped != nil {
				t, _ := rs.time(row)
				o.Skipped(k.Measurement(), t, err)
			}
			continue
		}
		recs = append(recs, rec)
	}
	return recs
}

// record rebuilds one Record from a row of kind k's measurement.
func (rs *rowSet) record(k telemetry.Kind, row []any) (telemetry.Record, error) {
	r := telemetry.Record{Kind: k}
	var err error
	if r.TS, err = rs.time(row); err != nil {
		return r, err
	}
	f := fieldReader{rs: rs, row: row}
	r.Device = f.str("device", true)
	if r.Device == "" && f.err == nil {
		f.err = errors.New("no device tag")
	}
	seq := f.int("seq", true)
	if seq < 0 && f.err == nil {
		f.err = fmt.Errorf("seq %d is negative", seq)
	}
	r.Seq = uint64(seq)
	r.Late = f.bool("late", false)
	r.Received = r.TS.Add(time.Duration(f.int("delay_ms", false)) * time.Millisecond)
	switch k {
	case telemetry.KindGPS:
		r.Fix = telemetry.Fix{Lat: f.float("lat", true), Lon: f.float("lon", true),
			SpeedKmh: f.float("speed_kmh", false), Heading: f.float("heading", false),
			Sats: int(f.int("sats", false)), Valid: f.bool("valid", false)}
	case telemetry.KindSensors:
		if c, ok := telemetry.ParseCover(f.str("cover", false)); ok {
			r.Sensors.Cover = c
		}
		if b, ok := telemetry.ParseBody(f.str("body", false)); ok {
			r.Sensors.Body = b
		}
		if rs.value(row, "load_kg") != nil {
			r.Sensors.LoadKg, r.Sensors.HasLoad = f.float("load_kg", true), true
		}
	case telemetry.KindRain:
		r.Rain = telemetry.RainReading{MM: f.float("mm", true), IntervalS: f.float("interval_s", false)}
	case telemetry.KindDepth:
		r.Depth = telemetry.DepthReading{DepthCM: f.float("depth_cm", true)}
	}
	return r, f.err
}

// fieldReader reads typed columns of one row and keeps the first error.
type fieldReader struct {
	rs  *rowSet
	row []any
	err error
}

func (f *fieldReader) get(name string, required bool) any {
	v := f.rs.value(f.row, name)
	if v == nil && required && f.err == nil {
		f.err = fmt.Errorf("no %s", name)
	}
	return v
}

func (f *fieldReader) fail(name string, v any, want string) {
	if f.err == nil {
		f.err = fmt.Errorf("%s is %T %v, want %s", name, v, v, want)
	}
}

func (f *fieldReader) str(name string, required bool) string {
	v := f.get(name, required)
	if v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.fail(name, v, "a string")
	}
	return s
}

func (f *fieldReader) float(name string, required bool) float64 {
	v := f.get(name, required)
	if v == nil {
		return 0
	}
	n, ok := v.(json.Number)
	if !ok {
		f.fail(name, v, "a number")
		return 0
	}
	x, err := n.Float64()
	if err != nil {
		f.fail(name, v, "a number")
	}
	return x
}

func (f *fieldReader) int(name string, required bool) int64 {
	v := f.get(name, required)
	if v == nil {
		return 0
	}
	n, ok := v.(json.Number)
	if !ok {
		f.fail(name, v, "an integer")
		return 0
	}
	x, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		// A float-typed field holding a whole number still reads.
		fl, ferr := n.Float64()
		if ferr != nil || fl != float64(int64(fl)) {
			f.fail(name, v, "an integer")
			return 0
		}
		x = int64(fl)
	}
	return x
}

func (f *fieldReader) bool(name string, required bool) bool {
	v := f.get(name, required)
	if v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		f.fail(name, v, "a boolean")
	}
	return b
}
