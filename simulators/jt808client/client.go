// Package jt808client is a JT/T 808 terminal: it connects to a platform
// over TCP, registers, authenticates and sends location reports and
// batches, waiting for the platform's reply to each, as a muck truck's
// terminal does. The simulator (urbanwatch sim -protocol jt808) plays its
// trucks with it, and tests drive the gateway with it.
//
// A Client is used by one goroutine at a time.
package jt808client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/urbanwatch/urbanwatch/ingest/jt808"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Options configures a Client. Phone is required.
type Options struct {
	Phone   string        // terminal phone number, decimal digits
	Version jt808.Version // header layout; default 2013
	// Timeout bounds the wait for each reply; default 10 s.
	Timeout time.Duration
	// PackageBytes is the largest body sent in one frame; longer ones go
	// in sub-packages. Default 1,000 (the field allows 1,023).
	PackageBytes int
}

// Client is one terminal connection.
type Client struct {
	o      Options
	conn   net.Conn
	buf    []byte
	rd     []byte
	serial uint16
}

// ResultError is a platform reply other than success.
type ResultError struct {
	MsgID  uint16
	Result byte
}

// Error implements error.
func (e *ResultError) Error() string {
	return fmt.Sprintf("jt808: platform answered 0x%04X with result %d", e.MsgID, e.Result)
}

// Dial connects to the platform at addr.
func Dial(ctx context.Context, addr string, o Options) (*Client, error) {
	if o.Phone == "" {
		return nil, errors.New("jt808client: Phone is required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.PackageBytes <= 0 || o.PackageBytes > 1023 {
		o.PackageBytes = 1000
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("jt808client: dial %s: %w", addr, err)
	}
	return &Client{o: o, conn: conn}, nil
}

// Close closes the connection; replies not yet read are lost.
func (c *Client) Close() error { return c.conn.Close() }

// Send writes one message without waiting for its reply, in sub-packages
// when it is longer than Options.PackageBytes, and returns the serial of
// each frame written.
func (c *Client) Send(msgID uint16, body []byte) ([]uint16, error) {
	n := max(1, (len(body)+c.o.PackageBytes-1)/c.o.PackageBytes)
	c.buf = c.buf[:0]
	serials := make([]uint16, 0, n)
	for i := range n {
		c.serial++
		h := jt808.Header{MsgID: msgID, Version: c.o.Version, Phone: c.o.Phone, Serial: c.serial}
		part := body
		if n > 1 {
			h.SubPackage, h.Total, h.Index = true, uint16(n), uint16(i+1)
			part = body[i*c.o.PackageBytes : min((i+1)*c.o.PackageBytes, len(body))]
		}
		var err error
		if c.buf, err = jt808.AppendFrame(c.buf, h, part); err != nil {
			return nil, err
		}
		serials = append(serials, c.serial)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.o.Timeout))
	if _, err := c.conn.Write(c.buf); err != nil {
		return nil, fmt.Errorf("jt808client: write: %w", err)
	}
	return serials, nil
}

// Call sends a message and waits for the platform general reply (0x8001)
// to each of its frames; it returns the worst result (the largest).
func (c *Client) Call(msgID uint16, body []byte) (byte, error) {
	serials, err := c.Send(msgID, body)
	if err != nil {
		return 0, err
	}
	want := map[uint16]bool{}
	for _, s := range serials {
		want[s] = true
	}
	var worst byte
	for len(want) > 0 {
		f, err := c.next()
		if err != nil {
			return 0, err
		}
		if f.MsgID != jt808.MsgPlatformReply {
			continue
		}
		r, err := jt808.ParsePlatformReply(f.Body)
		if err != nil || !want[r.Serial] || r.MsgID != msgID {
			continue // a late reply to an earlier message
		}
		delete(want, r.Serial)
		worst = max(worst, r.Result)
	}
	return worst, nil
}

// next reads the next frame from the platform.
func (c *Client) next() (*jt808.Frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.o.Timeout))
	var one [1]byte
	for {
		c.rd = c.rd[:0]
		for len(c.rd) == 0 || c.rd[len(c.rd)-1] != 0x7E || len(c.rd) == 1 {
			if _, err := io.ReadFull(c.conn, one[:]); err != nil {
				return nil, fmt.Errorf("jt808client: read: %w", err)
			}
			if len(c.rd) == 0 && one[0] != 0x7E {
				continue
			}
			if len(c.rd) == 1 && one[0] == 0x7E {
				continue // "7E 7E": this flag starts the frame
			}
			c.rd = append(c.rd, one[0])
			if len(c.rd) > 8192 {
				return nil, errors.New("jt808client: reply over 8 KiB")
			}
		}
		f, err := jt808.DecodeFrame(c.rd)
		if err != nil {
			continue
		}
		return f, nil
	}
}

// Register sends a registration (0x0100) and returns the platform's
// answer (0x8100): result and, on success, the authentication code.
func (c *Client) Register(r jt808.Register) (jt808.RegisterReply, error) {
	serials, err := c.Send(jt808.MsgRegister, jt808.AppendRegister(nil, r, c.o.Version))
	if err != nil {
		return jt808.RegisterReply{}, err
	}
	for {
		f, err := c.next()
		if err != nil {
			return jt808.RegisterReply{}, err
		}
		if f.MsgID == jt808.MsgRegisterReply {
			if rr, err := jt808.ParseRegisterReply(f.Body); err == nil && rr.Serial == serials[0] {
				return rr, nil
			}
		}
	}
}

// Authenticate sends the authentication code (0x0102); any result but
// success is a *ResultError.
func (c *Client) Authenticate(code string) error {
	return c.expectOK(jt808.MsgAuthenticate, jt808.AppendAuth(nil, code, c.o.Version))
}

// Heartbeat sends a heartbeat (0x0002).
func (c *Client) Heartbeat() error { return c.expectOK(jt808.MsgHeartbeat, nil) }

// Report sends one location report (0x0200) and returns the result.
func (c *Client) Report(l *jt808.Location) (byte, error) {
	return c.Call(jt808.MsgLocation, jt808.AppendLocation(nil, l))
}

// Backfill sends stored locations as blind-area batches (0x0704 type 1),
// at most 64 a batch, and returns the worst result.
func (c *Client) Backfill(ls []jt808.Location) (byte, error) {
	var worst byte
	for len(ls) > 0 {
		n := min(len(ls), 64)
		r, err := c.Call(jt808.MsgBatchLocation, jt808.AppendBatch(nil, 1, ls[:n]))
		if err != nil {
			return 0, err
		}
		worst = max(worst, r)
		ls = ls[n:]
	}
	return worst, nil
}

func (c *Client) expectOK(msgID uint16, body []byte) error {
	r, err := c.Call(msgID, body)
	if err != nil {
		return err
	}
	if r != jt808.ResultOK {
		return &ResultError{MsgID: msgID, Result: r}
	}
	return nil
}

// Location is the report a terminal with the default vendor profile
// (jt808.DefaultProfile) sends for a GPS fix and the sensor state at that
// time (nil: no sensor items): status bit 1 from Valid, the hemispheres
// from the signs, satellites in item 0x31, cover in 0xE1, body in 0xE2 and,
// when the truck has a load sensor, the load in kg in 0xE3. The time is
// cut to the second, the protocol's resolution.
func Location(fix *telemetry.Record, s *telemetry.SensorState) jt808.Location {
	l := jt808.Location{Lat: fix.Fix.Lat, Lon: fix.Fix.Lon, SpeedKmh: fix.Fix.SpeedKmh,
		Heading: uint16(int(fix.Fix.Heading+0.5) % 360), Time: fix.TS}
	if fix.Fix.Valid {
		l.Status |= jt808.StatusPositioned
	}
	if l.Lat < 0 {
		l.Status |= jt808.StatusSouth
	}
	if l.Lon < 0 {
		l.Status |= jt808.StatusWest
	}
	l.Extras = append(l.Extras, jt808.Extra{ID: jt808.ExtraSatellites, Data: []byte{byte(min(max(fix.Fix.Sats, 0), 255))}})
	if s != nil && s.Cover != telemetry.CoverUnknown && s.Body != telemetry.BodyUnknown {
		cover := map[telemetry.Cover]byte{telemetry.CoverClosed: 0, telemetry.CoverOpen: 1, telemetry.CoverFault: 2}[s.Cover]
		body := map[telemetry.Body]byte{telemetry.BodyDown: 0, telemetry.BodyRaised: 1}[s.Body]
		l.Extras = append(l.Extras, jt808.Extra{ID: 0xE1, Data: []byte{cover}}, jt808.Extra{ID: 0xE2, Data: []byte{body}})
		if s.HasLoad {
			kg := uint32(max(0, s.LoadKg+0.5))
			l.Extras = append(l.Extras, jt808.Extra{ID: 0xE3, Data: []byte{byte(kg >> 24), byte(kg >> 16), byte(kg >> 8), byte(kg)}})
		}
	}
	return l
}
