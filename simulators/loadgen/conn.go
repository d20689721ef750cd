package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

const (
	protocolVersion = 4  // MQTT 3.1.1
	keepAliveS      = 60 // seconds, in CONNECT
	pingEvery       = 30 * time.Second
)

// conn is one device's connection.
type conn struct {
	run     *run
	cred    Credential
	index   int
	reactor *reactor // publishes for this connection after the handshake; nil: publish does

	mu       sync.Mutex
	nc       net.Conn
	aborted  bool
	inflight map[uint16]time.Duration // packet id → sent, since run.t0
}

// abort closes the connection, unblocking its goroutines.
func (c *conn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aborted = true
	if c.nc != nil {
		_ = c.nc.Close()
	}
}

// serve handshakes (holding a slot of sem), reports on ready, waits for start,
// publishes and disconnects.
func (c *conn) serve(ctx context.Context, sem chan struct{}, ready chan<- struct{}, start <-chan struct{}) error {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		ready <- struct{}{}
		return ctx.Err()
	}
	nc, br, err := c.handshake(ctx)
	if err == nil && c.reactor != nil {
		err = c.reactor.adopt(c, nc, br)
		<-sem
		ready <- struct{}{}
		return err // the reactor publishes
	}
	<-sem
	ready <- struct{}{}
	if err != nil {
		return err
	}
	defer nc.Close()
	select {
	case <-start:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := c.publish(ctx, nc, br); err != nil {
		return err
	}
	c.run.done.Add(1)
	return nil
}

// handshake dials, sends CONNECT (clean session, username and password) and
// checks the CONNACK.
func (c *conn) handshake(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	o := &c.run.o
	d := net.Dialer{Timeout: o.AckTimeout}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	c.mu.Lock()
	c.nc = nc
	aborted := c.aborted
	c.mu.Unlock()
	if aborted {
		_ = nc.Close()
		return nil, nil, errors.New("aborted")
	}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: protocolVersion,
		Connect: packets.ConnectParams{
			ProtocolName:     []byte("MQTT"),
			Clean:            true,
			Keepalive:        keepAliveS,
			ClientIdentifier: c.cred.ID,
			UsernameFlag:     true,
			Username:         []byte(c.cred.ID),
			PasswordFlag:     true,
			Password:         []byte(c.cred.Secret),
		},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("encode CONNECT: %w", err)
	}
	_ = nc.SetDeadline(time.Now().Add(o.AckTimeout))
	if _, err := nc.Write(buf.Bytes()); err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("send CONNECT: %w", err)
	}
	br := bufio.NewReader(nc)
	fh, body, err := readPacket(br, nil)
	if err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("read CONNACK: %w", err)
	}
	if fh.Type != packets.Connack {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("got packet type %d, want CONNACK", fh.Type)
	}
	ack := packets.Packet{FixedHeader: fh, ProtocolVersion: protocolVersion}
	if err := ack.ConnackDecode(body); err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("decode CONNACK: %w", err)
	}
	if ack.ReasonCode != 0 {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("connection refused: CONNACK return code %d (%s)", ack.ReasonCode, connackText(ack.ReasonCode))
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, br, nil
}

func connackText(code byte) string {
	switch code {
	case 1:
		return "unacceptable protocol version"
	case 2:
		return "identifier rejected"
	case 3:
		return "server unavailable"
	case 4:
		return "bad user name or password"
	case 5:
		return "not authorized"
	}
	return "unknown"
}

// readPacket reads one packet, reusing buf for its body when big enough.
func readPacket(br *bufio.Reader, buf []byte) (packets.FixedHeader, []byte, error) {
	var fh packets.FixedHeader
	b, err := br.ReadByte()
	if err != nil {
		return fh, nil, err
	}
	if err := fh.Decode(b); err != nil {
		return fh, nil, fmt.Errorf("fixed header: %w", err)
	}
	n, _, err := packets.DecodeLength(br)
	if err != nil {
		return fh, nil, fmt.Errorf("remaining length: %w", err)
	}
	fh.Remaining = n
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		return fh, nil, err
	}
	return fh, buf, nil
}

// publish sends the connection's messages with at most Window unacknowledged
// and returns when all are acknowledged.
func (c *conn) publish(ctx context.Context, nc net.Conn, br *bufio.Reader) error {
	r := c.run
	o := &r.o
	c.inflight = make(map[uint16]time.Duration, o.Window)
	slots := make(chan struct{}, o.Window)
	readErr := make(chan error, 1)
	go func() { readErr <- c.readAcks(nc, br, slots) }()
	fail := func(err error) error {
		_ = nc.Close()
		if rerr := <-readErr; rerr != nil && !errors.Is(rerr, net.ErrClosed) {
			return errors.Join(err, rerr)
		}
		return err
	}

	bw := bufio.NewWriterSize(nc, 16<<10)
	var enc bytes.Buffer
	var id uint16
	var interval, offset time.Duration
	if o.Rate > 0 {
		n := time.Duration(len(o.Devices))
		interval = time.Second * n / time.Duration(o.Rate)
		offset = time.Second * time.Duration(c.index) / time.Duration(o.Rate)
	}
	pace := time.NewTimer(0)
	defer pace.Stop()
	<-pace.C
	for seq := range o.Messages {
		if interval > 0 {
			if err := c.waitUntil(ctx, bw, pace, offset+time.Duration(seq)*interval); err != nil {
				return fail(err)
			}
		}
		select {
		case slots <- struct{}{}:
		default:
			if err := bw.Flush(); err != nil {
				return fail(fmt.Errorf("write: %w", err))
			}
			select {
			case slots <- struct{}{}:
			case err := <-readErr:
				readErr <- err
				return fail(fmt.Errorf("waiting for PUBACKs: %w", err))
			case <-ctx.Done():
				return fail(ctx.Err())
			}
		}
		if id++; id == 0 {
			id = 1
		}
		topic, payload := o.Payload(c.cred.ID, seq, o.Now())
		pk := packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: 1},
			ProtocolVersion: protocolVersion,
			TopicName:       topic,
			Payload:         payload,
			PacketID:        id,
		}
		enc.Reset()
		if err := pk.PublishEncode(&enc); err != nil {
			return fail(fmt.Errorf("encode PUBLISH: %w", err))
		}
		c.mu.Lock()
		c.inflight[id] = time.Since(r.t0)
		c.mu.Unlock()
		if _, err := bw.Write(enc.Bytes()); err != nil {
			return fail(fmt.Errorf("write: %w", err))
		}
		r.sent.Add(1)
	}
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("write: %w", err))
	}
	select {
	case err := <-readErr:
		if err != nil {
			_ = nc.Close()
			return fmt.Errorf("waiting for PUBACKs: %w", err)
		}
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	_, _ = bw.Write([]byte{packets.Disconnect << 4, 0})
	_ = bw.Flush()
	return nil
}

// waitUntil sleeps until at (since run.t0), flushing first and sending a
// PINGREQ every pingEvery so that the broker keeps the connection.
func (c *conn) waitUntil(ctx context.Context, bw *bufio.Writer, t *time.Timer, at time.Duration) error {
	for {
		d := at - time.Since(c.run.t0)
		if d <= 0 {
			return nil
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		t.Reset(min(d, pingEvery))
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if at-time.Since(c.run.t0) > 0 {
			if _, err := bw.Write([]byte{packets.Pingreq << 4, 0}); err != nil {
				return fmt.Errorf("write PINGREQ: %w", err)
			}
		}
	}
}

// readAcks matches PUBACKs to outstanding packet ids until all Messages are
// acknowledged. A PUBACK for an id not outstanding is counted as an error.
func (c *conn) readAcks(nc net.Conn, br *bufio.Reader, slots <-chan struct{}) error {
	r := c.run
	o := &r.o
	var buf []byte
	acked := 0
	for acked < o.Messages {
		_ = nc.SetReadDeadline(time.Now().Add(o.AckTimeout))
		fh, body, err := readPacket(br, buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !c.overdue(o.AckTimeout) {
				continue // idle between paced publishes, nothing late
			}
			return fmt.Errorf("read: %w", err)
		}
		buf = body[:0]
		switch fh.Type {
		case packets.Puback:
			pk := packets.Packet{FixedHeader: fh, ProtocolVersion: protocolVersion}
			if err := pk.PubackDecode(body); err != nil {
				return fmt.Errorf("decode PUBACK: %w", err)
			}
			now := time.Since(r.t0)
			c.mu.Lock()
			sent, ok := c.inflight[pk.PacketID]
			delete(c.inflight, pk.PacketID)
			c.mu.Unlock()
			if !ok {
				r.fail(fmt.Errorf("device %s: PUBACK for packet id %d, which is not outstanding", c.cred.ID, pk.PacketID))
				continue
			}
			<-slots
			acked++
			r.acked.Add(1)
			r.hist.record(now - sent)
			for {
				last := r.lastAck.Load()
				if int64(now) <= last || r.lastAck.CompareAndSwap(last, int64(now)) {
					break
				}
			}
		case packets.Pingresp:
		default:
			return fmt.Errorf("unexpected packet type %d", fh.Type)
		}
	}
	return nil
}

// overdue reports whether some outstanding publish has waited longer than d.
func (c *conn) overdue(d time.Duration) bool {
	now := time.Since(c.run.t0)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sent := range c.inflight {
		if now-sent > d {
			return true
		}
	}
	return false
}
