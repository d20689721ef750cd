//go:build linux

package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// TestAppendPublish checks the reactor's PUBLISH encoding with mochi's decoder,
// across the one- to two-byte remaining-length boundary.
func TestAppendPublish(t *testing.T) {
	for _, size := range []int{0, 100, 127 - 2 - 15 - 2, 128, 20000} {
		payload := bytes.Repeat([]byte{'x'}, size)
		b := appendPublish([]byte{9}, "trucks/WF-T1/gps", 0x1234, payload)[1:]
		typ, body, n, err := splitPacket(b)
		if err != nil || n != len(b) || typ != packets.Publish {
			t.Fatalf("size %d: split %d %d %v, want one whole PUBLISH of %d bytes", size, typ, n, err, len(b))
		}
		if _, _, n, _ := splitPacket(b[:len(b)-1]); n != 0 {
			t.Fatalf("size %d: a packet short of one byte split as whole", size)
		}
		var fh packets.FixedHeader
		if err := fh.Decode(b[0]); err != nil {
			t.Fatal(err)
		}
		fh.Remaining = len(body)
		pk := packets.Packet{FixedHeader: fh, ProtocolVersion: 4}
		if err := pk.PublishDecode(body); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if pk.TopicName != "trucks/WF-T1/gps" || pk.PacketID != 0x1234 || pk.FixedHeader.Qos != 1 || !bytes.Equal(pk.Payload, payload) {
			t.Fatalf("size %d: decoded %s id %x qos %d, %d payload bytes", size, pk.TopicName, pk.PacketID, pk.FixedHeader.Qos, len(pk.Payload))
		}
	}
}

// TestReactorAckTimeout has a broker that logs the device in and never
// acknowledges its publish: the reactor must fail the connection after
// AckTimeout instead of waiting forever.
func TestReactorAckTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		if fh, _, err := readPacket(br, nil); err != nil || fh.Type != packets.Connect {
			return
		}
		nc.Write([]byte{packets.Connack << 4, 2, 0, 0})
		for {
			if _, _, err := readPacket(br, nil); err != nil {
				return
			}
		}
	}()
	res, err := Run(context.Background(), Options{Addr: ln.Addr().String(), Devices: []Credential{{"WF-T00001", "s"}},
		Messages: 2, Window: 1, AckTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no PUBACK") {
		t.Fatalf("err = %v, want a missing PUBACK reported", err)
	}
	if res.Sent != 1 || res.Acked != 0 || res.Errors != 1 {
		t.Fatalf("result %+v", res)
	}
}
