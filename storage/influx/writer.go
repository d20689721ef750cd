package influx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	http2 "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/internal/ratelog"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Source is what the Writer drains: the spool's cursor (*spool.Cursor).
//
// Next blocks until at least one record is available or ctx is done, and
// returns at most maxRecords records and about maxBytes bytes. Ack marks a
// batch as stored; batches are acknowledged in the order Next returned them.
// A batch that is not acknowledged is delivered again after a restart.
type Source interface {
	Next(ctx context.Context, maxRecords, maxBytes int) (spool.Batch, error)
	Ack(spool.Batch) error
}

// Options configures a Writer. URL and Bucket are required; zero values
// elsewhere take the documented defaults.
type Options struct {
	// URL is InfluxDB's base URL, e.g. "http://127.0.0.1:8086".
	URL string
	// Token is sent as "Authorization: Token <Token>". For InfluxDB 1.8 it is
	// "user:password", or empty when auth is off.
	Token string
	// Org is ignored by InfluxDB 1.8 (sent as is).
	Org string
	// Bucket is "database/retention-policy" for 1.8, e.g. "urbanwatch/autogen";
	// "urbanwatch" alone uses the database's default retention policy.
	Bucket string

	// BatchLines is the most points per write request. Default 5000.
	BatchLines int
	// BatchBytes is the maxBytes passed to Source.Next. Default 8 MiB.
	BatchBytes int
	// Timeout bounds one write request. Default 30s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the delay between retries of a failed
	// write, which doubles per attempt (with jitter). Defaults 500ms and 30s.
	// A Retry-After sent by InfluxDB overrides them (up to 5 minutes).
	MinBackoff, MaxBackoff time.Duration
	// MaxBisectWrites bounds the extra write requests spent per batch looking
	// for the records InfluxDB refused (see Run). Default 128.
	MaxBisectWrites int
	// LogEvery is the least time between two logs of the same ongoing write
	// failure. Default 10s.
	LogEvery time.Duration

	// Logger receives the writer's logs. The zero Logger discards them.
	Logger zerolog.Logger
	// Registerer receives the urbanwatch_influx_* metrics; nil registers
	// nowhere.
	Registerer prometheus.Registerer
	// Rejected, if set, receives every record that will not be stored (dead
	// letters): records that fail to decode and records InfluxDB refused
	// permanently. reason is "<code>: <detail>", code being RejectUndecodable
	// or RejectRefused (split it with strings.Cut(reason, ": ")), detail
	// free text such as InfluxDB's own message. It is called from Run's
	// goroutine before the batch is acknowledged; record is only valid during
	// the call (copy it to keep it).
	Rejected func(reason string, record []byte)

	// Now and Sleep are test hooks: the clock and the retry wait, which must
	// return ctx.Err() early when ctx is done. Defaults time.Now and a timer.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// The codes that start the reason given to Options.Rejected.
const (
	RejectUndecodable = "undecodable" // the spool record did not decode
	RejectRefused     = "refused"     // InfluxDB refused the point (4xx other than 401/403/404/408/429)
)

// Default option values.
const (
	DefaultBatchLines      = 5000
	DefaultBatchBytes      = 8 << 20
	DefaultTimeout         = 30 * time.Second
	DefaultMinBackoff      = 500 * time.Millisecond
	DefaultMaxBackoff      = 30 * time.Second
	DefaultMaxBisectWrites = 128
	DefaultLogEvery        = 10 * time.Second

	maxRetryAfter = 5 * time.Minute
)

// Writer drains a Source into InfluxDB. Create it with NewWriter and call Run
// once; it is not safe for concurrent use.
type Writer struct {
	src    Source
	opts   Options
	client influxdb2.Client
	api    api.WriteAPIBlocking
	http   *http.Client // the client's HTTP client, gzipTransport inside
	m      *metrics
	log    zerolog.Logger

	// Per batch: the lines, newline-separated, in buf; ends[i] is where line i
	// ends (exclusive, before its newline) and recs[i] the index of its record
	// in the batch.
	batch spool.Batch
	buf   []byte
	ends  []int
	recs  []int

	failLog     ratelog.Limiter
	decodeLog   ratelog.Limiter
	failures    int       // consecutive failed attempts
	failedSince time.Time // first of them
}

// NewWriter returns a Writer draining src into the InfluxDB at opts.URL. It
// registers its metrics on opts.Registerer and fails if that fails (e.g. a
// second Writer on the same registry). It does not contact InfluxDB.
func NewWriter(src Source, opts Options) (*Writer, error) {
	if src == nil {
		return nil, errors.New("influx: NewWriter: nil Source")
	}
	if u, err := url.Parse(opts.URL); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("influx: NewWriter: invalid URL %q", opts.URL)
	}
	if opts.Bucket == "" {
		return nil, errors.New(`influx: NewWriter: Bucket is required ("database/retention-policy")`)
	}
	setDefault(&opts.BatchLines, DefaultBatchLines)
	setDefault(&opts.BatchBytes, DefaultBatchBytes)
	setDefault(&opts.Timeout, DefaultTimeout)
	setDefault(&opts.MinBackoff, DefaultMinBackoff)
	setDefault(&opts.MaxBackoff, DefaultMaxBackoff)
	setDefault(&opts.MaxBisectWrites, DefaultMaxBisectWrites)
	setDefault(&opts.LogEvery, DefaultLogEvery)
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	// The HTTP client's own timeout is only a backstop: each write carries a
	// context deadline of exactly Timeout.
	// Bodies are compressed by gzipTransport, not by the client's UseGZip,
	// which costs a fresh 1 MB compressor per request.
	httpClient := newGzipClient(opts.Timeout + time.Second)
	client := influxdb2.NewClientWithOptions(opts.URL, opts.Token, influxdb2.DefaultOptions().
		SetHTTPClient(httpClient).
		SetPrecision(time.Nanosecond).
		SetApplicationName("urbanwatch"))
	w := &Writer{
		http:      httpClient,
		src:       src,
		opts:      opts,
		client:    client,
		api:       client.WriteAPIBlocking(opts.Org, opts.Bucket),
		m:         m,
		log:       opts.Logger.With().Str("component", "influx-writer").Logger(),
		failLog:   ratelog.Limiter{Every: opts.LogEvery},
		decodeLog: ratelog.Limiter{Every: opts.LogEvery},
	}
	return w, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Close releases the HTTP client's idle connections. Call it after Run has
// returned.
func (w *Writer) Close() {
	w.client.Close()
	w.http.CloseIdleConnections() // the client leaves a client it was given open
}

// Run drains the Source until ctx is done, then returns nil. Per batch it:
//
//   - decodes each record; one that fails to decode is counted
//     (urbanwatch_influx_undecodable_records_total), logged, handed to
//     Rejected and skipped;
//   - writes the rest as line protocol, BatchLines points per gzip-compressed
//     request, each request blocking until InfluxDB answers;
//   - retries a request that failed transiently (network error, timeout, 5xx,
//     429, and 401/403/404, which are configuration errors that must not
//     dead-letter every record) forever, with exponential backoff or the
//     server's Retry-After, without moving the drain position;
//   - on a permanent refusal (400, 413, other 4xx) bisects the request: halves
//     are rewritten until each refused record is isolated and handed to
//     Rejected (at most MaxBisectWrites extra requests per batch; what is
//     still unresolved then goes to Rejected wholesale). InfluxDB 1.8 stores
//     the good points of a refused request, and rewriting them is harmless
//     because a point's rewrite overwrites it;
//   - acknowledges the batch to the Source only when every record is stored or
//     rejected.
//
// If ctx ends mid-batch the batch is not acknowledged (it is re-delivered
// later, idempotently). Run returns a non-nil error only if the Source fails
// (Next other than by ctx, or Ack).
func (w *Writer) Run(ctx context.Context) error {
	for {
		b, err := w.src.Next(ctx, w.opts.BatchLines, w.opts.BatchBytes)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("influx: read next batch from spool: %w", err)
		}
		if !w.store(ctx, b) {
			return nil // ctx done mid-batch
		}
		if err := w.src.Ack(b); err != nil {
			return fmt.Errorf("influx: ack batch ending at %v: %w", b.End, err)
		}
	}
}

// store writes batch b, returning false if ctx ended before all of it was
// stored or rejected.
func (w *Writer) store(ctx context.Context, b spool.Batch) bool {
	w.batch = b
	w.buf, w.ends, w.recs = w.buf[:0], w.ends[:0], w.recs[:0]
	var r telemetry.Record
	for i, raw := range b.Records {
		if err := r.UnmarshalBinary(raw); err != nil {
			w.m.undecodable.Inc()
			if ok, n := w.decodeLog.Allow(w.opts.Now()); ok {
				w.log.Error().Err(err).Int("bytes", len(raw)).Int("suppressed", n).
					Msg("skipping undecodable spool record")
			}
			w.deadLetter(RejectUndecodable+": "+err.Error(), raw)
			continue
		}
		w.buf = AppendLine(w.buf, &r)
		w.ends = append(w.ends, len(w.buf))
		w.recs = append(w.recs, i)
		w.buf = append(w.buf, '\n')
	}
	budget := w.opts.MaxBisectWrites
	for lo := 0; lo < len(w.ends); lo += w.opts.BatchLines {
		hi := min(lo+w.opts.BatchLines, len(w.ends))
		refused, ok := w.write(ctx, lo, hi)
		if !ok {
			return false
		}
		if refused != nil {
			w.log.Warn().Err(refused).Int("points", hi-lo).
				Msg("InfluxDB refused part of a batch; looking for the bad records")
			rejected, ok := w.bisect(ctx, lo, hi, refused, &budget)
			if !ok {
				return false
			}
			if rejected == 0 {
				w.log.Info().Int("points", hi-lo).Msg("every part of the refused batch was stored on rewrite")
			} else {
				w.log.Error().Err(refused).Int("points", hi-lo).Int("rejected", rejected).
					Msg("InfluxDB refused records permanently; dead-lettered them and stored the rest")
			}
		}
	}
	return true
}

// bisect resolves lines [lo,hi), which InfluxDB refused with refused: it
// rewrites each half and recurses into refused halves, rejecting single
// lines, or the whole range once the budget of extra writes is spent. It
// returns the number of records rejected, and false if ctx ended.
func (w *Writer) bisect(ctx context.Context, lo, hi int, refused error, budget *int) (int, bool) {
	if hi-lo == 1 || *budget <= 0 {
		return w.reject(lo, hi, refused), true
	}
	mid := lo + (hi-lo)/2
	total := 0
	for _, half := range [2][2]int{{lo, mid}, {mid, hi}} {
		if *budget <= 0 {
			total += w.reject(half[0], half[1], refused)
			continue
		}
		*budget--
		err, ok := w.write(ctx, half[0], half[1])
		if !ok {
			return total, false
		}
		if err != nil {
			n, ok := w.bisect(ctx, half[0], half[1], err, budget)
			total += n
			if !ok {
				return total, false
			}
		}
	}
	return total, true
}

// reject dead-letters the records of lines [lo,hi) and returns their number.
func (w *Writer) reject(lo, hi int, refused error) int {
	reason := RejectRefused + ": " + refused.Error()
	if hi-lo > 1 {
		reason += fmt.Sprintf(" (refused with %d others; bisection budget spent)", hi-lo-1)
	}
	for i := lo; i < hi; i++ {
		w.m.rejected.Inc()
		w.deadLetter(reason, w.batch.Records[w.recs[i]])
	}
	return hi - lo
}

// write sends lines [lo,hi) in one request, retrying transient failures until
// it succeeds or InfluxDB refuses the data. It returns the refusal (nil when
// stored) and false if ctx ended first.
func (w *Writer) write(ctx context.Context, lo, hi int) (refused error, ok bool) {
	start := 0
	if lo > 0 {
		start = w.ends[lo-1] + 1
	}
	body := string(w.buf[start:w.ends[hi-1]])
	for attempt := 0; ; attempt++ {
		wctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		t0 := time.Now()
		err := w.api.WriteRecord(wctx, body)
		w.m.writeSeconds.Observe(time.Since(t0).Seconds())
		timedOut := errors.Is(wctx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			w.succeeded(hi - lo)
			return nil, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		f := classify(err, timedOut)
		w.m.failures.WithLabelValues(f.reason).Inc()
		w.m.up.Set(0)
		if f.permanent {
			return refusal(err), true
		}
		delay := w.backoff(attempt)
		if f.retryAfter > 0 {
			delay = min(f.retryAfter, maxRetryAfter)
		}
		w.failed(err, f.reason, hi-lo, delay)
		if w.opts.Sleep(ctx, delay) != nil {
			return nil, false
		}
	}
}

func (w *Writer) succeeded(points int) {
	now := w.opts.Now()
	w.m.writtenPoints.Add(float64(points))
	w.m.batchPoints.Observe(float64(points))
	w.m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	w.m.up.Set(1)
	if w.failures > 0 {
		w.log.Info().Int("failed_attempts", w.failures).Dur("outage", now.Sub(w.failedSince)).
			Msg("InfluxDB writes recovered")
		w.failures = 0
		w.failLog.Reset()
	}
}

func (w *Writer) failed(err error, reason string, points int, delay time.Duration) {
	now := w.opts.Now()
	if w.failures == 0 {
		w.failedSince = now
	}
	w.failures++
	if ok, n := w.failLog.Allow(now); ok {
		w.log.Warn().Err(err).Str("reason", reason).Int("points", points).
			Int("failed_attempts", w.failures).Int("suppressed", n).Dur("retry_in", delay).
			Msg("InfluxDB write failed; retrying, the spool keeps the data")
	}
}

func (w *Writer) deadLetter(reason string, record []byte) {
	if w.opts.Rejected != nil {
		w.opts.Rejected(reason, record)
	}
}

// backoff returns the wait before retry attempt+1: MinBackoff doubled per
// attempt, capped at MaxBackoff, with "equal jitter" (uniform in [d/2, d]).
func (w *Writer) backoff(attempt int) time.Duration {
	d := w.opts.MinBackoff
	for i := 0; i < attempt && d < w.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.opts.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// refusal reduces a permanent write error to its status and InfluxDB's own
// message.
func refusal(err error) error {
	var he *http2.Error
	if errors.As(err, &he) && he.Message != "" {
		return fmt.Errorf("HTTP %d: %s", he.StatusCode, he.Message)
	}
	return err
}

// failure is a classified write error.
type failure struct {
	reason     string
	permanent  bool          // the data is refused; retrying the same request cannot help
	retryAfter time.Duration // the server's Retry-After, if any
}

func classify(err error, timedOut bool) failure {
	var he *http2.Error
	if !errors.As(err, &he) || he.StatusCode == 0 {
		var ne net.Error
		if timedOut || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return failure{reason: ReasonTimeout}
		}
		return failure{reason: ReasonNetwork}
	}
	f := failure{retryAfter: time.Duration(he.RetryAfter) * time.Second}
	switch code := he.StatusCode; {
	case code == http.StatusTooManyRequests:
		f.reason = ReasonRateLimited
	case code == http.StatusRequestTimeout:
		f.reason = ReasonTimeout
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		f.reason = ReasonAuth
	case code == http.StatusNotFound:
		f.reason = ReasonNotFound
	case code >= 400 && code < 500:
		f.reason, f.permanent = ReasonRejected, true
	default: // 5xx, and anything unexpected
		f.reason = ReasonServerError
	}
	return f
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
