package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
)

func TestLogWritesOneLineAndNeverFails(t *testing.T) {
	var buf bytes.Buffer
	l := NewLog(zerolog.New(&buf))
	if l.Name() != "log" {
		t.Errorf("Name = %q", l.Name())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // even a canceled attempt is logged
	m := testMessage(t, "SMS_123456789")
	got, err := l.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Receipt{Provider: "log", MessageID: "alert-42"}); got != want {
		t.Errorf("receipt = %+v, want %+v", got, want)
	}
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1: %s", len(lines), buf.Bytes())
	}
	var line map[string]string
	if err := json.Unmarshal(lines[0], &line); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"level": "info", "provider": "log", "id": "alert-42", "to": "+8613800000000",
		"template": "uncovered_load", "lang": "zh-CN", "text": m.Text,
	} {
		if line[k] != want {
			t.Errorf("%s = %q, want %q", k, line[k], want)
		}
	}
}

func TestEverySenderIsASender(t *testing.T) {
	for _, s := range []Sender{&Aliyun{}, &Tencent{}, &Twilio{}, &Webhook{}, NewLog(zerolog.Nop())} {
		if s.Name() == "" {
			t.Errorf("%T has no name", s)
		}
	}
}
