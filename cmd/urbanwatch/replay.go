package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/rules"
	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

const replayUsage = `Usage: urbanwatch replay [-config FILE] [-city FILE] [-compare FILE]
         (-capture FILE.jsonl | -from RFC3339 -to RFC3339 [-influx-url URL]) [-json]

Runs a city configuration over recorded telemetry through the rules engine and
prints the alerts it would have raised, then a count per rule and state. With
-compare, runs a second city file over the same input and lists the alerts
only the first (A) raised, only the second (B) raised, and both raised.

Flags:
`

// compareTolerance is how far apart the start times of two alerts of one
// rule and subject may be for compare mode to call them the same alert.
const compareTolerance = 2 * time.Minute

// maxListedProblems caps how many bad capture lines or skipped points are
// listed one by one; the rest are counted.
const maxListedProblems = 50

// maxCaptureLine is the longest capture line read; longer lines are bad.
const maxCaptureLine = 1 << 20

// replay runs a city configuration over recorded telemetry through the same
// rules engine as the live service, in event time, and prints the alerts it
// would have raised; with -compare it runs two configurations over the same
// input and matches their alerts one by one.
//
// The input is a capture file of MQTT messages (docs/protocol.md, "Capture
// files (replay)"), admitted as live ingest admits them, or a range of the
// records stored in InfluxDB (docs/data-model.md). At the end of the input
// the engines' watermark is closed at the end of the range, so silences
// are judged up to it.
func replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), replayUsage)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "urbanwatch.yaml", "configuration file")
	cityPath := fs.String("city", "", "city file to replay (default: the configuration's city)")
	comparePath := fs.String("compare", "", "a second city file (B) to replay over the same input and compare with -city (A)")
	capture := fs.String("capture", "", "JSON Lines capture of device messages (docs/protocol.md, \"Capture files (replay)\")")
	fromFlag := fs.String("from", "", "read InfluxDB from this time, RFC 3339 (device timestamps, inclusive)")
	toFlag := fs.String("to", "", "read InfluxDB up to this time, RFC 3339 (exclusive); silences are judged up to it")
	influxURL := fs.String("influx-url", "", "InfluxDB 1.8 URL (default: influx.url of the configuration)")
	window := fs.Duration("window", influx.DefaultReadWindow, "with -from/-to: device time read from InfluxDB and put in arrival order at once")
	jsonOut := fs.Bool("json", false, "print one JSON alert event per line (in compare mode, one JSON match per line); summaries go to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("replay: unexpected argument %q", fs.Arg(0))
	}
	fromCapture := *capture != ""
	switch {
	case fromCapture && (*fromFlag != "" || *toFlag != ""):
		return errors.New("replay: use -capture or -from/-to, not both")
	case !fromCapture && (*fromFlag == "" || *toFlag == ""):
		return errors.New("replay: give -capture FILE, or -from and -to to read InfluxDB")
	}
	var from, to time.Time
	if !fromCapture {
		var err error
		if from, err = time.Parse(time.RFC3339Nano, *fromFlag); err != nil {
			return fmt.Errorf("replay: -from: %w", err)
		}
		if to, err = time.Parse(time.RFC3339Nano, *toFlag); err != nil {
			return fmt.Errorf("replay: -to: %w", err)
		}
		if !from.Before(to) {
			return fmt.Errorf("replay: -from %s is not before -to %s", *fromFlag, *toFlag)
		}
	}

	cfg, reg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	pathA := *cityPath
	if pathA == "" {
		pathA = cfg.City
	}
	if pathA == "" {
		return fmt.Errorf("replay: %s names no city file (set city: or use -city)", *cfgPath)
	}
	paths := []string{pathA}
	if *comparePath != "" {
		paths = append(paths, *comparePath)
	}
	compare := len(paths) == 2

	out := &errWriter{w: stdout}
	var runs []*replayRun
	for i, p := range paths {
		city, err := config.LoadCity(p, reg)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		r := &replayRun{label: string(rune('A' + i)), path: p, loc: cityLocation(city), counts: map[eventKey]int{}}
		if !compare {
			r.print = func(a *telemetry.Alert) {
				if *jsonOut {
					writeJSONLine(out, a)
				} else {
					fmt.Fprintln(out, formatEvent(a, r.loc))
				}
			}
		}
		if r.engine, err = rules.New(rules.Options{City: city, Sink: rules.SinkFunc(r.emit)}); err != nil {
			return fmt.Errorf("replay: %s: %w", p, err)
		}
		runs = append(runs, r)
	}
	feed := func(rec *telemetry.Record) error {
		for _, r := range runs {
			c := *rec // each engine gets its own copy
			r.engine.Process(&c)
		}
		return nil
	}

	var in inputStats
	if fromCapture {
		in, err = replayCapture(ctx, *capture, cfg, reg, feed, stderr)
	} else {
		in, err = replayInflux(ctx, cfg, *influxURL, from, to, *window, feed, stderr)
	}
	if err != nil {
		return err
	}
	if !in.end.IsZero() {
		for _, r := range runs {
			r.engine.AdvanceTo(in.end)
		}
	}

	summary := io.Writer(out)
	if *jsonOut {
		summary = stderr
	}
	if compare {
		printComparison(out, summary, *jsonOut, runs[0], runs[1], in)
	} else {
		if !*jsonOut && len(runs[0].counts) > 0 {
			fmt.Fprintln(summary)
		}
		printInput(summary, &in, runs[0].loc)
		printCounts(summary, runs[0].counts)
	}
	if out.err != nil {
		return fmt.Errorf("replay: write output: %w", out.err)
	}
	return nil
}

// replayRun is one city configuration's engine and what it raised.
type replayRun struct {
	label  string // "A" or "B"
	path   string
	loc    *time.Location
	engine *rules.Engine
	counts map[eventKey]int
	events []telemetry.Alert // kept in compare mode
	print  func(*telemetry.Alert)
}

// eventKey counts events by rule and state.
type eventKey struct {
	rule  string
	state telemetry.AlertState
}

// emit is the run's rules.Sink: it copies the event the engine reuses.
func (r *replayRun) emit(a *telemetry.Alert) {
	r.counts[eventKey{a.Rule, a.State}]++
	if r.print != nil {
		r.print(a)
		return
	}
	c := *a
	c.Details = maps.Clone(a.Details)
	r.events = append(r.events, c)
}

// cityLocation is the zone the city's times are printed in.
func cityLocation(c *config.City) *time.Location {
	if c.Location != nil {
		return c.Location
	}
	if loc, err := time.LoadLocation(cmp.Or(c.TimeZone, "Asia/Shanghai")); err == nil {
		return loc
	}
	return time.UTC
}

// inputStats describes what was replayed.
type inputStats struct {
	source     string    // "capture FILE" or "InfluxDB URL"
	records    int       // records fed to the engines
	bad        int       // capture lines that were not admitted
	duplicates int       // capture messages dropped as redeliveries
	skipped    int       // InfluxDB points that are not records
	first      time.Time // earliest device timestamp fed
	last       time.Time // latest device timestamp fed
	end        time.Time // where the watermark is closed
}

func (in *inputStats) saw(r *telemetry.Record) {
	in.records++
	if in.first.IsZero() || r.TS.Before(in.first) {
		in.first = r.TS
	}
	if r.TS.After(in.last) {
		in.last = r.TS
	}
}

// replayCapture feeds the admitted messages of a capture file, in file
// order, and reports every bad line to stderr as path:line: reason.
func replayCapture(ctx context.Context, path string, cfg *config.Config, reg *config.Registry,
	feed func(*telemetry.Record) error, stderr io.Writer) (inputStats, error) {
	in := inputStats{source: "capture " + path}
	f, err := os.Open(path)
	if err != nil {
		return in, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	adm := newAdmitter(cfg, reg)
	err = readCapture(ctx, f, adm, func(r *telemetry.Record) error {
		in.saw(r)
		if r.Received.After(in.end) {
			in.end = r.Received
		}
		if r.TS.After(in.end) {
			in.end = r.TS
		}
		return feed(r)
	}, func(line int, err error) {
		in.bad++
		if in.bad <= maxListedProblems {
			fmt.Fprintf(stderr, "replay: %s:%d: %v\n", path, line, err)
		}
	})
	in.duplicates = adm.duplicates
	if in.bad > maxListedProblems {
		fmt.Fprintf(stderr, "replay: %s: %d more bad lines not listed\n", path, in.bad-maxListedProblems)
	}
	if err != nil {
		return in, fmt.Errorf("replay: %s: %w", path, err)
	}
	return in, nil
}

// captureLine is one line of a capture file.
type captureLine struct {
	Received string          `json:"received"`
	Topic    string          `json:"topic"`
	Payload  json.RawMessage `json:"payload"`
}

// readCapture reads capture lines from r and calls fn with each admitted
// message, in order; bad is called with the 1-based line number of each
// line that is not one, and reading goes on. Blank lines are ignored. It
// returns the first error fn returns, a read error, or ctx's error.
func readCapture(ctx context.Context, r io.Reader, adm *admitter, fn func(*telemetry.Record) error, bad func(line int, err error)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for n := 1; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, tooLong, err := readLine(br, &long)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if len(bytes.TrimSpace(line)) == 0 && !tooLong {
			if errors.Is(err, io.EOF) {
				return nil
			}
			continue
		}
		rec, perr := parseCaptureLine(line, tooLong, adm)
		switch {
		case perr != nil:
			bad(n, perr)
		case rec != nil:
			if ferr := fn(rec); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// readLine returns the next line without its newline. A line longer than
// maxCaptureLine is consumed and reported as tooLong. buf is scratch space
// reused between calls.
func readLine(br *bufio.Reader, buf *[]byte) (line []byte, tooLong bool, err error) {
	*buf = (*buf)[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		if len(*buf)+len(chunk) > maxCaptureLine {
			tooLong = true
		} else {
			*buf = append(*buf, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(*buf, "\r\n"), tooLong, err
	}
}

// parseCaptureLine decodes one capture line into an admitted record. It
// returns nil, nil for a message live ingest would drop silently (a
// duplicate).
func parseCaptureLine(line []byte, tooLong bool, adm *admitter) (*telemetry.Record, error) {
	if tooLong {
		return nil, fmt.Errorf("line longer than %d bytes", maxCaptureLine)
	}
	var cl captureLine
	if err := json.Unmarshal(line, &cl); err != nil {
		return nil, fmt.Errorf("not a capture line (want {\"received\", \"topic\", \"payload\"}): %w", err)
	}
	if cl.Received == "" || cl.Topic == "" || len(cl.Payload) == 0 {
		return nil, errors.New("received, topic and payload are required")
	}
	received, err := time.Parse(time.RFC3339Nano, cl.Received)
	if err != nil {
		return nil, fmt.Errorf("received %q: want RFC 3339 with offset", cl.Received)
	}
	payload := []byte(cl.Payload)
	if payload[0] == '"' {
		var s string
		if err := json.Unmarshal(payload, &s); err != nil {
			return nil, fmt.Errorf("payload string: %w", err)
		}
		payload = []byte(s)
	}
	return adm.admit(received, cl.Topic, payload)
}

// admitter applies live ingest's checks to captured messages: the topic,
// the payload size, the registry, the wire contract (ingest.Decode), the
// timestamp limits relative to the receive time, deduplication of
// redeliveries and the late flag.
type admitter struct {
	cfg        *config.Config
	reg        *config.Registry
	dedup      *ingest.Dedup
	duplicates int
}

func newAdmitter(cfg *config.Config, reg *config.Registry) *admitter {
	return &admitter{cfg: cfg, reg: reg, dedup: ingest.NewDedup()}
}

// admit returns the record of one message received at received, nil, nil
// for a duplicate, or the *ingest.Rejection live ingest would give.
func (a *admitter) admit(received time.Time, topic string, payload []byte) (*telemetry.Record, error) {
	device, kind, rej := ingest.ParseTopic(topic)
	if rej != nil {
		return nil, rej
	}
	lim := a.cfg.Ingest
	if len(payload) > lim.MaxPayloadBytes {
		return nil, &ingest.Rejection{Reason: ingest.ReasonOversized,
			Detail: fmt.Sprintf("payload %d bytes, limit %d", len(payload), lim.MaxPayloadBytes)}
	}
	if class, ok := a.reg.Class(device); !ok || class != kind.Class() {
		return nil, &ingest.Rejection{Reason: ingest.ReasonUnknownDevice,
			Detail: fmt.Sprintf("device %q is not registered as %s", device, kind.Class())}
	}
	rec, err := ingest.Decode(kind, payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", topic, err)
	}
	if rec.TS.After(received.Add(lim.MaxFuture)) {
		return nil, &ingest.Rejection{Reason: ingest.ReasonTSFuture, Detail: fmt.Sprintf(
			"ts %s is %s ahead of the receive time, limit %s", rec.TS.Format(time.RFC3339), rec.TS.Sub(received).Round(time.Second), lim.MaxFuture)}
	}
	if rec.TS.Before(received.Add(-lim.MaxAge)) {
		return nil, &ingest.Rejection{Reason: ingest.ReasonTSTooOld, Detail: fmt.Sprintf(
			"ts %s is %s old, limit %s", rec.TS.Format(time.RFC3339), received.Sub(rec.TS).Round(time.Second), lim.MaxAge)}
	}
	rec.Device, rec.Received = device, received
	switch a.dedup.Check(device, kind, rec.Seq, rec.TS) {
	case ingest.SeqDuplicate:
		a.duplicates++
		return nil, nil
	case ingest.SeqLate:
		rec.Late = true
	}
	if received.Sub(rec.TS) > lim.LateAfter {
		rec.Late = true
	}
	a.dedup.Mark(device, kind, rec.Seq, rec.TS)
	return &rec, nil
}

// replayInflux feeds the records stored in InfluxDB with from ≤ ts < to,
// window by window in arrival order, and closes the range at to.
func replayInflux(ctx context.Context, cfg *config.Config, rawURL string, from, to time.Time, window time.Duration,
	feed func(*telemetry.Record) error, stderr io.Writer) (inputStats, error) {
	if rawURL == "" {
		rawURL = cfg.Influx.URL
	}
	if rawURL == "" {
		return inputStats{}, errors.New("replay: no InfluxDB URL (use -influx-url)")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return inputStats{}, fmt.Errorf("replay: InfluxDB URL: %w", err)
	}
	// Credentials: in the URL, or influx.token as "user:password".
	user, pass, _ := strings.Cut(cfg.Influx.Token, ":")
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	in := inputStats{source: "InfluxDB " + u.Redacted(), end: to}
	o := influx.ReadOptions{URL: u.String(), User: user, Password: pass, Database: cfg.Influx.Database,
		RetentionPolicy: cfg.Influx.RetentionPolicy, From: from, To: to, Window: window,
		Skipped: func(meas string, ts time.Time, err error) {
			in.skipped++
			if in.skipped <= maxListedProblems {
				fmt.Fprintf(stderr, "replay: skipped %s point at %s: %v\n", meas, ts.Format(time.RFC3339Nano), err)
			}
		}}
	err = influx.ReadRecords(ctx, o, func(r *telemetry.Record) error {
		in.saw(r)
		return feed(r)
	})
	if in.skipped > maxListedProblems {
		fmt.Fprintf(stderr, "replay: %d more skipped points not listed\n", in.skipped-maxListedProblems)
	}
	if err != nil {
		return in, fmt.Errorf("replay: %w", err)
	}
	return in, nil
}

// formatEvent renders one alert event as a line, times in loc:
//
//	2026-11-24T21:31:05+08:00 FIRING  uncovered_load  鲁G·A0001 (潍坊XX运输有限公司)  started 21:30:35  cover=open speed_kmh=32.5
func formatEvent(a *telemetry.Alert, loc *time.Location) string {
	var b strings.Builder
	ts := a.TS.In(loc)
	fmt.Fprintf(&b, "%s %-7s %s  %s  started %s", ts.Format(time.RFC3339), strings.ToUpper(string(a.State)),
		a.Rule, subjectText(a.Subject), clockText(a.StartedAt, ts, loc))
	if a.Version > 1 {
		fmt.Fprintf(&b, "  version=%d", a.Version)
	}
	if d := detailsText(a.Details, loc); d != "" {
		b.WriteString("  ")
		b.WriteString(d)
	}
	return b.String()
}

// clockText is t's time of day in loc, with the date when it is not the
// date of ref.
func clockText(t, ref time.Time, loc *time.Location) string {
	t = t.In(loc)
	if y, m, d := t.Date(); ref.Year() == y && ref.Month() == m && ref.Day() == d {
		return t.Format("15:04:05")
	}
	return t.Format("01-02 15:04:05")
}

// subjectText names an alert's subject: a truck's plate with its company,
// a gauge's id with its name.
func subjectText(s telemetry.Subject) string {
	switch {
	case s.CompanyName != "":
		return s.ID + " (" + s.CompanyName + ")"
	case s.Name != "" && s.Name != s.ID:
		return s.ID + " (" + s.Name + ")"
	}
	return s.ID
}

// detailsText renders details as key=value pairs in key order.
func detailsText(d map[string]any, loc *time.Location) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(d)) {
		parts = append(parts, k+"="+valueText(d[k], loc))
	}
	return strings.Join(parts, " ")
}

func valueText(v any, loc *time.Location) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		if v == "" || strings.ContainsAny(v, " =\"") {
			return strconv.Quote(v)
		}
		return v
	case float64:
		return floatText(v)
	case float32:
		return floatText(float64(v))
	case time.Time:
		return v.In(loc).Format(time.RFC3339)
	case time.Duration:
		return v.String()
	case []string:
		return strings.Join(v, ",")
	case fmt.Stringer:
		return v.String()
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

// floatText prints a measured value to two decimals at most.
func floatText(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// printInput prints what was replayed.
func printInput(w io.Writer, in *inputStats, loc *time.Location) {
	fmt.Fprintf(w, "replayed %d records from %s", in.records, in.source)
	if in.records > 0 {
		fmt.Fprintf(w, ", device time %s to %s", in.first.In(loc).Format(time.RFC3339), in.last.In(loc).Format(time.RFC3339))
	}
	var notes []string
	if in.bad > 0 {
		notes = append(notes, plural(in.bad, "bad line", "bad lines"))
	}
	if in.duplicates > 0 {
		notes = append(notes, plural(in.duplicates, "duplicate dropped", "duplicates dropped"))
	}
	if in.skipped > 0 {
		notes = append(notes, plural(in.skipped, "point skipped", "points skipped"))
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(notes, ", "))
	}
	fmt.Fprintln(w)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// printCounts prints the events per rule and state as a table.
func printCounts(w io.Writer, counts map[eventKey]int) {
	if len(counts) == 0 {
		fmt.Fprintln(w, "no alert events")
		return
	}
	rules := map[string]bool{}
	for k := range counts {
		rules[k.rule] = true
	}
	rows := [][]string{{"rule", "firing", "resolved"}}
	var firing, resolved int
	for _, r := range slices.Sorted(maps.Keys(rules)) {
		f, res := counts[eventKey{r, telemetry.AlertFiring}], counts[eventKey{r, telemetry.AlertResolved}]
		firing += f
		resolved += res
		rows = append(rows, []string{r, strconv.Itoa(f), strconv.Itoa(res)})
	}
	rows = append(rows, []string{"total", strconv.Itoa(firing), strconv.Itoa(resolved)})
	printTable(w, rows)
}

// printTable prints rows as columns, the first left-aligned and the others
// right-aligned.
func printTable(w io.Writer, rows [][]string) {
	var width []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString("  " + pad + cell)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// alertRun is one alert (all events of one ID) of a replay.
type alertRun struct {
	first    telemetry.Alert // its first event
	resolved time.Time       // zero if still firing at the end
	severity string          // the highest it reached
}

// matchKey is what two alerts must share to be the same alert: the rule
// (with the zone, for zone_violation) and the subject.
func (a *alertRun) matchKey() string {
	k := a.first.Rule + "\x00" + a.first.Subject.ID
	if z, ok := a.first.Details["zone"].(string); ok && a.first.Rule == "zone_violation" {
		k += "\x00" + z
	}
	return k
}

// collectAlerts groups events into alerts by ID, in order of first event.
func collectAlerts(events []telemetry.Alert) []*alertRun {
	byID := map[string]*alertRun{}
	var out []*alertRun
	for _, e := range events {
		a := byID[e.ID]
		if a == nil {
			a = &alertRun{first: e, severity: e.Severity}
			byID[e.ID] = a
			out = append(out, a)
		}
		if severityRank(e.Severity) > severityRank(a.severity) {
			a.severity = e.Severity
		}
		if e.State == telemetry.AlertResolved {
			a.resolved = e.TS
		}
	}
	return out
}

func severityRank(s string) int {
	return slices.Index([]string{config.SeverityMinor, config.SeverityWarning, config.SeverityMajor, config.SeverityCritical}, s)
}

// alertPair is an alert both runs raised.
type alertPair struct{ a, b *alertRun }

// matchAlerts pairs the alerts of two runs that share rule and subject and
// started within tol of each other, each with the closest unpaired one
// (the earliest on a tie). Every list is in order of start time.
func matchAlerts(as, bs []*alertRun, tol time.Duration) (onlyA, onlyB []*alertRun, both []alertPair) {
	byStart := func(x, y *alertRun) int {
		return cmp.Or(x.first.StartedAt.Compare(y.first.StartedAt), cmp.Compare(x.first.Rule, y.first.Rule),
			cmp.Compare(x.first.Subject.ID, y.first.Subject.ID), cmp.Compare(x.first.ID, y.first.ID))
	}
	as, bs = slices.Clone(as), slices.Clone(bs)
	slices.SortFunc(as, byStart)
	slices.SortFunc(bs, byStart)
	free := map[string][]*alertRun{}
	for _, b := range bs {
		free[b.matchKey()] = append(free[b.matchKey()], b)
	}
	paired := map[*alertRun]bool{}
	for _, a := range as {
		var best *alertRun
		var bestD time.Duration
		for _, b := range free[a.matchKey()] {
			if paired[b] {
				continue
			}
			d := b.first.StartedAt.Sub(a.first.StartedAt).Abs()
			if d <= tol && (best == nil || d < bestD) {
				best, bestD = b, d
			}
		}
		if best == nil {
			onlyA = append(onlyA, a)
			continue
		}
		paired[best] = true
		both = append(both, alertPair{a, best})
	}
	for _, b := range bs {
		if !paired[b] {
			onlyB = append(onlyB, b)
		}
	}
	return onlyA, onlyB, both
}

// compareJSON is one line of compare mode's JSON output.
type compareJSON struct {
	Match      string           `json:"match"` // only_a, only_b, both
	A          *telemetry.Alert `json:"a,omitempty"`
	B          *telemetry.Alert `json:"b,omitempty"`
	StartDiffS *float64         `json:"start_diff_s,omitempty"` // B's start minus A's, seconds
}

// printComparison prints the alerts only A raised, only B raised and both
// raised, then the alerts per rule of each. In JSON mode the groups are
// JSON lines on out and the rest goes to summary.
func printComparison(out, summary io.Writer, jsonOut bool, ra, rb *replayRun, in inputStats) {
	as, bs := collectAlerts(ra.events), collectAlerts(rb.events)
	onlyA, onlyB, both := matchAlerts(as, bs, compareTolerance)
	loc := ra.loc
	printInput(summary, &in, loc)
	fmt.Fprintf(summary, "A: %s\nB: %s\n", ra.path, rb.path)
	if jsonOut {
		for _, a := range onlyA {
			writeJSONLine(out, compareJSON{Match: "only_a", A: &a.first})
		}
		for _, b := range onlyB {
			writeJSONLine(out, compareJSON{Match: "only_b", B: &b.first})
		}
		for _, p := range both {
			d := p.b.first.StartedAt.Sub(p.a.first.StartedAt).Seconds()
			writeJSONLine(out, compareJSON{Match: "both", A: &p.a.first, B: &p.b.first, StartDiffS: &d})
		}
	} else {
		fmt.Fprintf(out, "\nonly in A (%d):\n", len(onlyA))
		for _, a := range onlyA {
			fmt.Fprintf(out, "  %s\n", formatAlertRun(a, loc))
		}
		fmt.Fprintf(out, "\nonly in B (%d):\n", len(onlyB))
		for _, b := range onlyB {
			fmt.Fprintf(out, "  %s\n", formatAlertRun(b, loc))
		}
		fmt.Fprintf(out, "\nin both (%d):\n", len(both))
		for _, p := range both {
			d := p.b.first.StartedAt.Sub(p.a.first.StartedAt)
			sign := "+"
			if d < 0 {
				sign = "-"
			}
			fmt.Fprintf(out, "  %s  %s  started A %s  B %s (B %s%s)\n", p.a.first.Rule, subjectText(p.a.first.Subject),
				p.a.first.StartedAt.In(loc).Format(time.RFC3339), clockText(p.b.first.StartedAt, p.a.first.StartedAt.In(loc), loc),
				sign, d.Abs().Round(time.Second))
		}
		fmt.Fprintln(out)
	}
	counts := map[string][2]int{}
	for i, list := range [][]*alertRun{as, bs} {
		for _, a := range list {
			c := counts[a.first.Rule]
			c[i]++
			counts[a.first.Rule] = c
		}
	}
	if len(counts) == 0 {
		fmt.Fprintln(summary, "no alerts in A or B")
		return
	}
	rows := [][]string{{"alerts per rule", "A", "B"}}
	var ta, tb int
	for _, r := range slices.Sorted(maps.Keys(counts)) {
		c := counts[r]
		ta, tb = ta+c[0], tb+c[1]
		rows = append(rows, []string{r, strconv.Itoa(c[0]), strconv.Itoa(c[1])})
	}
	rows = append(rows, []string{"total", strconv.Itoa(ta), strconv.Itoa(tb)})
	printTable(summary, rows)
}

// formatAlertRun renders one alert of compare mode: rule, subject, start,
// when it fired and resolved, its highest severity and its first details.
func formatAlertRun(a *alertRun, loc *time.Location) string {
	start := a.first.StartedAt.In(loc)
	s := fmt.Sprintf("%s  %s  started %s  fired %s", a.first.Rule, subjectText(a.first.Subject),
		start.Format(time.RFC3339), clockText(a.first.TS, start, loc))
	if a.resolved.IsZero() {
		s += "  still firing"
	} else {
		s += "  resolved " + clockText(a.resolved, start, loc)
	}
	s += "  " + a.severity
	if d := detailsText(a.first.Details, loc); d != "" {
		s += "  " + d
	}
	return s
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	w.Write(append(b, '\n'))
}

// errWriter keeps the first write error, so output code can write freely
// and the command reports a broken pipe once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
