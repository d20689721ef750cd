package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// TripMeasurement holds the rules engine's trips (docs/data-model.md).
const TripMeasurement = "truck_trip"

// AppendTripLine appends the line-protocol line of trip t: measurement
// truck_trip, tag device, fields plate, company, permit, origin, disposal,
// trip_id, arrived_ms, distance_m, duration_s, violations (a count) and
// violation_ids (comma-joined), at the departure time. A trip written again
// (a replay) overwrites the same point.
func AppendTripLine(b []byte, t *telemetry.Trip) []byte {
	b = append(b, TripMeasurement...)
	if t.Device != "" {
		b = append(b, ",device="...)
		b = appendEscaped(b, t.Device, escTag)
	}
	f := fields{b: b, sep: ' '}
	f.string("trip_id", t.ID)
	f.string("plate", t.Plate)
	f.string("company", t.Company)
	f.string("permit", t.Permit)
	f.string("origin", t.Origin)
	f.string("disposal", t.Disposal)
	f.int("arrived_ms", t.ArrivedAt.UnixMilli())
	f.float("distance_m", t.DistanceM)
	f.float("duration_s", t.DurationS)
	f.int("violations", int64(len(t.Violations)))
	f.string("violation_ids", strings.Join(t.Violations, ","))
	b = append(f.b, ' ')
	return strconv.AppendInt(b, t.DepartedAt.UnixNano(), 10)
}

// WriteOptions says where WriteLines writes.
type WriteOptions struct {
	URL    string // InfluxDB base URL
	Token  string // "user:password" for InfluxDB 1.8 with auth; "" without
	Bucket string // "database/retention-policy"
	// Timeout bounds one request; default 30s.
	Timeout time.Duration
}

// WriteLines writes newline-separated line-protocol lines (nanosecond
// precision) with one request to the v2 write API. The error of a refused
// request says whether it is worth retrying: see Retryable.
func WriteLines(ctx context.Context, o WriteOptions, lines []byte) error {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	zw.Write(lines)
	zw.Close()
	u := strings.TrimSuffix(o.URL, "/") + "/api/v2/write?" + url.Values{"bucket": {o.Bucket}, "precision": {"ns"}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if o.Token != "" {
		req.Header.Set("Authorization", "Token "+o.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &WriteError{Err: err, Retry: true}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound
	return &WriteError{Err: fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg)), Retry: retry}
}

// WriteError is a failed WriteLines: Retry says whether the same request
// may succeed later (network, 5xx, 429, or a configuration error such as a
// wrong token that must not drop data); otherwise InfluxDB refused the
// lines themselves.
type WriteError struct {
	Err   error
	Retry bool
}

func (e *WriteError) Error() string { return "influx: write: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }
