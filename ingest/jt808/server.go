package jt808

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/ingest"
	"github.com/urbanwatch/urbanwatch/internal/ratelog"
	"github.com/urbanwatch/urbanwatch/simulators/wire"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Terminals identifies JT/T 808 terminals. Implemented by the registry.
type Terminals interface {
	// JT808Terminal returns the device registered under a phone number
	// (NormalizePhone form) and the name of its vendor profile ("" for
	// the default one).
	JT808Terminal(phone string) (device, profile string, ok bool)
	// JT808AuthCode returns the authentication code a registering
	// terminal is handed; ok is false when the registry keeps only its
	// hash (the terminal was provisioned with it).
	JT808AuthCode(device string) (code string, ok bool)
	// AuthenticateJT808 reports whether code is device's authentication
	// code.
	AuthenticateJT808(device, code string) bool
}

// Ingest receives the records terminals report. Implemented by
// *ingest.Ingester: Begin validates, deduplicates and submits one message
// of the JSON wire contract, and the gateway replies to the terminal only
// once the returned Pending says what became of it.
type Ingest interface {
	Begin(identity, topic string, payload []byte) *ingest.Pending
}

// DeadLetters keeps refused frames. Implemented by *ingest.DeadLetters;
// Put must copy payload and must not block.
type DeadLetters interface {
	Put(at time.Time, reason ingest.Reason, detail, topic, identity string, payload []byte)
}

// Options configures a Server. Addr, Terminals and Ingest are required.
type Options struct {
	Addr string // TCP listen address, e.g. "0.0.0.0:7611"
	// MaxConnections caps open connections; more are closed on accept.
	// Default 20,000.
	MaxConnections int
	// IdleTimeout closes a connection that sends no frame for this long
	// (terminals send a heartbeat every 30–60 s). Default 3 min.
	IdleTimeout time.Duration
	// AuthTimeout closes a connection that has not authenticated this long
	// after it opened, so idle or probing connections cannot hold the
	// slots real terminals need. Default 1 min.
	AuthTimeout time.Duration
	// WriteTimeout bounds one reply write. Default 10 s.
	WriteTimeout time.Duration
	// MaxFrameBytes caps one frame, flags and escapes included; longer
	// ones are refused as oversized. Default 4 KiB (the largest legal
	// frame is about 2 KiB escaped).
	MaxFrameBytes int
	// MaxMessageBytes caps a message reassembled from sub-packages.
	// Default 64 KiB.
	MaxMessageBytes int
	// Profiles are the vendor profiles by name; "default" is
	// DefaultProfile() unless given here.
	Profiles    map[string]Profile
	Terminals   Terminals
	Ingest      Ingest
	DeadLetters DeadLetters // nil: refused frames are counted and logged only
	Now         func() time.Time
	Logger      zerolog.Logger
	Registerer  prometheus.Registerer
}

// Server is the JT/T 808 gateway.
type Server struct {
	o        Options
	profiles map[string]*Profile

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
	active atomic.Int64
	once   sync.Once

	rejLog, authLog ratelog.Limiter

	frames     *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	authFailed *prometheus.CounterVec
	replies    *prometheus.CounterVec
	refused    prometheus.Counter
	accepted   prometheus.Counter
}

// Message ids counted by name in urbanwatch_jt808_frames_total; the rest
// are "other", so a terminal cannot grow the label set.
var countedIDs = []uint16{MsgTerminalReply, MsgHeartbeat, MsgDeregister, MsgRegister, MsgAuthenticate, MsgLocation, MsgBatchLocation}

// Auth failure reasons, the label values of urbanwatch_jt808_auth_failures_total.
const (
	authUnknownPhone     = "unknown_phone"     // no registry entry has the phone number
	authBadCode          = "bad_code"          // wrong or missing authentication code
	authNotAuthenticated = "not_authenticated" // a report before authentication
	authPhoneMismatch    = "phone_mismatch"    // a frame naming another phone on an authenticated connection
)

var resultNames = [...]string{"ok", "failure", "bad_message", "unsupported"}

// New builds a Server; Start or Run opens its listener.
func New(o Options) (*Server, error) {
	if o.Addr == "" || o.Terminals == nil || o.Ingest == nil {
		return nil, errors.New("jt808: Addr, Terminals and Ingest are required")
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 20000
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 3 * time.Minute
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = 4 << 10
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, profiles: map[string]*Profile{}, conns: map[*conn]struct{}{},
		rejLog: ratelog.Limiter{Every: time.Second}, authLog: ratelog.Limiter{Every: time.Second},
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_jt808_frames_total",
			Help: "JT/T 808 frames decoded, by message id (other for ids urbanwatch does not handle)."}, []string{"msg_id"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_jt808_frames_rejected_total",
			Help: "JT/T 808 frames and messages refused, by reason (docs/jt808.md)."}, []string{"reason"}),
		authFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_jt808_auth_failures_total",
			Help: "JT/T 808 terminals refused: unknown phone, bad code, report before authentication, another phone."}, []string{"reason"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "urbanwatch_jt808_replies_total",
			Help: "Platform general replies (0x8001) sent, by result."}, []string{"result"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_jt808_connections_refused_total",
			Help: "JT/T 808 connections closed on accept because max_connections were open."}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "urbanwatch_jt808_connections_accepted_total",
			Help: "JT/T 808 connections accepted."}),
	}
	for name, p := range o.Profiles {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("jt808 profile %s: %w", name, err)
		}
		s.profiles[name] = &p
	}
	if _, ok := s.profiles["default"]; !ok {
		d := DefaultProfile()
		s.profiles["default"] = &d
	}
	for _, id := range countedIDs {
		s.frames.WithLabelValues(msgLabel(id))
	}
	s.frames.WithLabelValues("other")
	for _, r := range FrameReasons {
		s.rejected.WithLabelValues(r)
	}
	for _, r := range []string{authUnknownPhone, authBadCode, authNotAuthenticated, authPhoneMismatch} {
		s.authFailed.WithLabelValues(r)
	}
	for _, r := range resultNames {
		s.replies.WithLabelValues(r)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.frames, s.rejected, s.authFailed, s.replies, s.refused, s.accepted,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "urbanwatch_jt808_connections",
				Help: "JT/T 808 connections open."}, func() float64 { return float64(s.active.Load()) })} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("jt808 metrics: %w", err)
			}
		}
	}
	return s, nil
}

func msgLabel(id uint16) string {
	for _, c := range countedIDs {
		if c == id {
			return fmt.Sprintf("0x%04X", id)
		}
	}
	return "other"
}

// Start opens the listener and begins accepting connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	if s.closed {
		return errors.New("jt808: server closed")
	}
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("jt808 listen %s: %w", s.o.Addr, err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

// Run starts the server if needed and serves until ctx is done, then
// closes it (see Close).
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// Close stops accepting, closes every connection and returns once each
// connection's pending reports have their outcome from ingest (so the
// spool may be closed after it). Calls after the first do nothing.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		if s.ln != nil {
			s.ln.Close()
		}
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

// Addr returns the bound listen address ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and go on.
			s.o.Logger.Error().Err(err).Msg("jt808 accept")
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if s.active.Load() >= int64(s.o.MaxConnections) {
			s.refused.Inc()
			nc.Close()
			continue
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.active.Add(1)
		s.wg.Add(2)
		s.mu.Unlock()
		s.accepted.Inc()
		go c.readLoop()
		go c.writeLoop()
	}
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Add(-1)
}

// reject counts and dead-letters a refused frame or message.
func (s *Server) reject(reason, detail, phone, device string, msgID uint16, frame []byte) {
	s.rejected.WithLabelValues(reason).Inc()
	if ok, n := s.rejLog.Allow(s.o.Now()); ok {
		s.o.Logger.Warn().Str("reason", reason).Str("detail", detail).Str("phone", phone).Str("device", device).
			Int("suppressed", n).Msg("jt808 frame refused")
	}
	if s.o.DeadLetters != nil {
		s.o.DeadLetters.Put(s.o.Now(), ingest.Reason("jt808_"+reason), detail, deadTopic(phone, msgID), device, frame)
	}
}

// deadTopic names a refused frame in the dead letters:
// "jt808/{phone}/0x{msg id}" ("jt808" alone when the header was unreadable).
func deadTopic(phone string, msgID uint16) string {
	if phone == "" {
		return "jt808"
	}
	return fmt.Sprintf("jt808/%s/0x%04X", phone, msgID)
}

func (s *Server) authFailure(reason, phone, remote string) {
	s.authFailed.WithLabelValues(reason).Inc()
	if ok, n := s.authLog.Allow(s.o.Now()); ok {
		s.o.Logger.Warn().Str("reason", reason).Str("phone", phone).Str("remote", remote).Int("suppressed", n).
			Msg("jt808 terminal refused")
	}
}

// Limits of one connection.
const (
	maxBadRun    = 16 // consecutive refused frames before the connection is closed
	maxAuthFails = 5  // failed authentications before the connection is closed
	// authDeadline: a connection that has not authenticated by then is
	// closed, so idle unauthenticated connections cannot fill the slots.
	authDeadline  = time.Minute
	replyQueue    = 64  // messages awaiting their reply; the reader waits beyond it
	maxBatchItems = 512 // locations in one 0x0704
)

// conn is one terminal connection: readLoop decodes frames, hands reports
// to ingest and queues a job per message; writeLoop waits, in order, for
// each job's records to be durable and sends the reply. The reader owns
// the session state (identity, reassembly); the writer owns the outgoing
// serial number.
type conn struct {
	s       *Server
	nc      net.Conn
	remote  string
	fr      *frameReader
	asm     assembler
	replies chan job

	authed    bool
	phone     string // NormalizePhone of the authenticated terminal
	device    string
	profile   *Profile
	authFails int
	badRun    int
	buf       []byte
}

// job is one reply to send.
type job struct {
	hdr     Header   // of the terminal's message: version and phone
	serials []uint16 // answered serials (every package of a sub-packaged message)
	result  byte     // when pend is empty
	pend    []*ingest.Pending
	// register, for 0x0100: a 0x8100 reply with result and code.
	register bool
	code     string
	close    bool // close the connection after the reply
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(),
		fr: newFrameReader(nc, s.o.MaxFrameBytes), asm: assembler{maxBytes: s.o.MaxMessageBytes},
		replies: make(chan job, replyQueue)}
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer close(c.replies)
	accepted := time.Now()
	for {
		deadline := time.Now().Add(c.s.o.IdleTimeout)
		if !c.authed {
			// A connection that does not authenticate soon holds a slot a
			// real terminal may need.
			if d := accepted.Add(c.s.o.AuthTimeout); d.Before(deadline) {
				deadline = d
			}
		}
		if err := c.nc.SetReadDeadline(deadline); err != nil {
			return
		}
		raw, err := c.fr.next()
		switch {
		case errors.Is(err, errGarbage):
			c.s.reject(ReasonGarbage, fmt.Sprintf("over %d bytes without a 0x7E frame; connection closed", c.s.o.MaxFrameBytes),
				c.phone, c.device, 0, nil)
			return
		case errors.Is(err, errOversized):
			c.s.reject(ReasonOversized, fmt.Sprintf("frame over %d bytes", c.s.o.MaxFrameBytes), c.phone, c.device, 0, nil)
			if c.bad() {
				return
			}
			continue
		case err != nil:
			return // EOF, idle timeout, closed
		}
		f, err := DecodeFrame(raw)
		if err != nil {
			var fe *FrameError
			errors.As(err, &fe)
			c.s.reject(fe.Reason, fe.Detail, c.phone, c.device, 0, raw)
			if c.bad() {
				return
			}
			continue
		}
		c.badRun = 0
		c.s.frames.WithLabelValues(msgLabel(f.MsgID)).Inc()
		if !c.handle(f, raw) {
			return
		}
	}
}

// bad counts a refused frame and reports whether the connection has sent
// too many in a row to be worth keeping.
func (c *conn) bad() bool {
	c.badRun++
	return c.badRun >= maxBadRun
}

// handle acts on one decoded frame; false closes the connection.
func (c *conn) handle(f *Frame, raw []byte) bool {
	phone := NormalizePhone(f.Phone)
	if f.MsgID == MsgTerminalReply {
		return true // an answer to a platform command; urbanwatch sends none
	}
	if c.authed && phone != c.phone {
		c.s.authFailure(authPhoneMismatch, f.Phone, c.remote)
		c.s.reject(ReasonAuth, fmt.Sprintf("connection authenticated as %s, frame names %s", c.phone, phone), f.Phone, c.device, f.MsgID, raw)
		return c.reply(job{hdr: f.Header, serials: []uint16{f.Serial}, result: ResultFailure})
	}
	if f.Encryption != 0 {
		c.s.reject(ReasonEncrypted, fmt.Sprintf("encryption mode %d", f.Encryption), f.Phone, c.device, f.MsgID, raw)
		return c.reply(job{hdr: f.Header, serials: []uint16{f.Serial}, result: ResultUnsupported})
	}
	serials := []uint16{f.Serial}
	if f.SubPackage && !c.authed {
		// Registration and authentication never need sub-packages; before
		// them no terminal may hold reassembly memory.
		c.s.authFailure(authNotAuthenticated, f.Phone, c.remote)
		c.s.reject(ReasonAuth, "sub-package before authentication", f.Phone, "", f.MsgID, raw)
		c.authFails++
		return c.reply(job{hdr: f.Header, serials: serials, result: ResultFailure, close: c.authFails >= maxAuthFails})
	}
	if f.SubPackage {
		whole, all, err := c.asm.add(f, c.s.o.Now())
		if err != nil {
			var fe *FrameError
			errors.As(err, &fe)
			c.s.reject(fe.Reason, fe.Detail, f.Phone, c.device, f.MsgID, raw)
			return c.reply(job{hdr: f.Header, serials: []uint16{f.Serial}, result: ResultBadMessage})
		}
		if whole == nil {
			return true // answered with the whole message
		}
		f, serials = whole, all
	}
	switch f.MsgID {
	case MsgHeartbeat:
		return c.reply(job{hdr: f.Header, serials: serials, result: ResultOK})
	case MsgRegister:
		return c.register(f, serials, raw)
	case MsgAuthenticate:
		return c.authenticate(f, serials, raw)
	case MsgDeregister:
		c.authed, c.device, c.profile = false, "", nil
		return c.reply(job{hdr: f.Header, serials: serials, result: ResultOK})
	case MsgLocation, MsgBatchLocation:
		return c.report(f, serials, raw)
	}
	return c.reply(job{hdr: f.Header, serials: serials, result: ResultUnsupported})
}

func (c *conn) reply(j job) bool {
	c.replies <- j
	return !j.close
}

// register answers 0x0100 with 0x8100: "terminal already registered" (3)
// for a phone the registry knows, "no such terminal" (4) for an unknown one.
// It never hands out the authentication code: a registration carries no
// secret, and phone numbers are predictable (a fleet's are its prefix and
// the device number), so handing the code to whoever asks would let anyone
// report as any truck. Terminals are provisioned with their code
// (docs/jt808.md); an unknown phone counts as a failed authentication, so
// one connection cannot probe phone numbers.
func (c *conn) register(f *Frame, serials []uint16, raw []byte) bool {
	phone := NormalizePhone(f.Phone)
	reg, err := ParseRegister(f.Body, f.Version)
	if err != nil {
		var fe *FrameError
		errors.As(err, &fe)
		c.s.reject(fe.Reason, fe.Detail, f.Phone, "", f.MsgID, raw)
		return c.reply(job{hdr: f.Header, serials: serials, result: ResultBadMessage})
	}
	dev, _, ok := c.s.o.Terminals.JT808Terminal(phone)
	if !ok {
		c.s.authFailure(authUnknownPhone, f.Phone, c.remote)
		c.authFails++
		return c.reply(job{hdr: f.Header, serials: serials, register: true, result: RegisterUnknownTerminal,
			close: c.authFails >= maxAuthFails})
	}
	c.s.o.Logger.Debug().Str("device", dev).Str("phone", f.Phone).Str("model", reg.Model).Str("terminal", reg.TerminalID).
		Msg("jt808 terminal registration: provisioned with its code")
	return c.reply(job{hdr: f.Header, serials: serials, register: true, result: RegisterTerminalTaken})
}

func (c *conn) authenticate(f *Frame, serials []uint16, raw []byte) bool {
	phone := NormalizePhone(f.Phone)
	code, err := ParseAuth(f.Body, f.Version)
	if err != nil {
		var fe *FrameError
		errors.As(err, &fe)
		c.s.reject(fe.Reason, fe.Detail, f.Phone, "", f.MsgID, raw)
		return c.reply(job{hdr: f.Header, serials: serials, result: ResultBadMessage})
	}
	dev, profile, ok := c.s.o.Terminals.JT808Terminal(phone)
	reason := authUnknownPhone
	if ok {
		reason = authBadCode
		ok = code != "" && c.s.o.Terminals.AuthenticateJT808(dev, code)
	}
	if !ok {
		c.s.authFailure(reason, f.Phone, c.remote)
		c.authFails++
		return c.reply(job{hdr: f.Header, serials: serials, result: ResultFailure, close: c.authFails >= maxAuthFails})
	}
	if profile == "" {
		profile = "default"
	}
	p, found := c.s.profiles[profile]
	if !found {
		c.s.o.Logger.Error().Str("device", dev).Str("profile", profile).Msg("jt808 profile not configured; using default")
		p = c.s.profiles["default"]
	}
	c.authed, c.phone, c.device, c.profile, c.authFails = true, phone, dev, p, 0
	c.s.o.Logger.Debug().Str("device", dev).Str("phone", f.Phone).Str("remote", c.remote).Msg("jt808 terminal authenticated")
	return c.reply(job{hdr: f.Header, serials: serials, result: ResultOK})
}

// report maps a 0x0200 or 0x0704 to records and hands each to ingest; the
// reply waits for all of them.
func (c *conn) report(f *Frame, serials []uint16, raw []byte) bool {
	if !c.authed {
		c.s.authFailure(authNotAuthenticated, f.Phone, c.remote)
		c.s.reject(ReasonAuth, "location report before authentication", f.Phone, "", f.MsgID, raw)
		return c.reply(job{hdr: f.Header, serials: serials, result: ResultFailure})
	}
	var locs []Location
	var err error
	if f.MsgID == MsgLocation {
		var l Location
		l, err = ParseLocation(f.Body)
		locs = []Location{l}
	} else {
		var b Batch
		b, err = ParseBatch(f.Body)
		locs = b.Items
		if err == nil && len(locs) > maxBatchItems {
			err = frameErr(ReasonBody, "batch of %d items, at most %d", len(locs), maxBatchItems)
		}
	}
	if err != nil {
		var fe *FrameError
		errors.As(err, &fe)
		c.s.reject(fe.Reason, fe.Detail, f.Phone, c.device, f.MsgID, frameOrBody(raw, f))
		return c.reply(job{hdr: f.Header, serials: serials, result: ResultBadMessage})
	}
	j := job{hdr: f.Header, serials: serials, pend: make([]*ingest.Pending, 0, 2*len(locs))}
	for i := range locs {
		gps, sens, has := c.profile.Records(&locs[i])
		j.pend = append(j.pend, c.begin(&gps))
		if has {
			j.pend = append(j.pend, c.begin(&sens))
		}
	}
	return c.reply(j)
}

// frameOrBody is what the dead letters keep of a refused message: the
// frame, or for a reassembled one the whole body.
func frameOrBody(raw []byte, f *Frame) []byte {
	if len(f.Body) > len(raw) {
		return f.Body
	}
	return raw
}

// begin hands one record to ingest as the JSON message an MQTT terminal
// would publish on its topic.
func (c *conn) begin(rec *telemetry.Record) *ingest.Pending {
	c.buf = wire.Append(c.buf[:0], rec, wire.UnixMilli)
	return c.s.o.Ingest.Begin(c.device, telemetry.Topic(c.device, rec.Kind), c.buf)
}

// writeLoop sends each job's reply once its records' outcome is known:
// 0 when every record is accepted or a duplicate, 2 when one broke the
// contract (it is in the dead letters; sending it again cannot help), 1
// when the spool could not take one, after which the connection is
// closed, so the terminal keeps the report and sends it again on its next
// connection, as after any network loss. It drains every job, so each
// Pending is waited for exactly once, even after a write failed.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	defer c.s.remove(c)
	defer c.nc.Close()
	var serial uint16
	var out []byte
	failed := false
	for j := range c.replies {
		result := j.result
		unavailable, rejected := false, false
		for _, p := range j.pend {
			switch p.Wait().Status {
			case ingest.Unavailable:
				unavailable = true
			case ingest.Rejected:
				rejected = true
			}
		}
		switch {
		case unavailable:
			result, j.close = ResultFailure, true
		case rejected:
			result = ResultBadMessage
		}
		if failed {
			continue
		}
		out = out[:0]
		for _, sn := range j.serials {
			h := Header{Version: j.hdr.Version, Phone: j.hdr.Phone, Serial: serial}
			serial++
			var body []byte
			if j.register {
				h.MsgID = MsgRegisterReply
				body = AppendRegisterReply(nil, sn, result, j.code)
			} else {
				h.MsgID = MsgPlatformReply
				body = AppendPlatformReply(nil, sn, j.hdr.MsgID, result)
				c.s.replies.WithLabelValues(resultNames[min(int(result), len(resultNames)-1)]).Inc()
			}
			var err error
			if out, err = AppendFrame(out, h, body); err != nil {
				c.s.o.Logger.Error().Err(err).Msg("jt808 encode reply")
			}
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.o.WriteTimeout))
		if _, err := c.nc.Write(out); err != nil {
			failed = true
			c.nc.Close() // the reader stops; the rest of the queue is drained unanswered
			continue
		}
		if j.close {
			failed = true
			c.nc.Close()
		}
	}
}
