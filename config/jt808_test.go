package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistryJT808(t *testing.T) {
	hash := HashSecret("provisioned-code")
	reg, err := ParseRegistry("registry.yaml", []byte(`
devices:
  - id: J1
    class: trucks
    jt808: {phone: "013812345678", auth_code: code-J1, profile: acme}
  - id: J2
    class: trucks
    jt808: {phone: "00000000013812345679", auth_code_hash: "`+hash+`"}
  - id: M1
    class: trucks
fleets:
  - prefix: WF-T
    class: trucks
    count: 20000
    width: 5
    key: weifang-demo-truck-fleet-key
    jt808: {phone_prefix: "0139"}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		phone, device, profile string
	}{
		{"013812345678", "J1", "acme"},
		{"00000000013812345678", "J1", "acme"}, // the same number in a 2019 header
		{"13812345679", "J2", ""},
		{"013900000042", "WF-T00042", ""},
		{"013900020000", "WF-T20000", ""},
	} {
		dev, prof, ok := reg.JT808Terminal(c.phone)
		if !ok || dev != c.device || prof != c.profile {
			t.Errorf("JT808Terminal(%s) = %s %q %v, want %s %q", c.phone, dev, prof, ok, c.device, c.profile)
		}
	}
	for _, p := range []string{"013900000000", "013900020001", "13812345670", "0"} {
		if dev, _, ok := reg.JT808Terminal(p); ok {
			t.Errorf("JT808Terminal(%s) = %s", p, dev)
		}
	}
	if code, ok := reg.JT808AuthCode("J1"); !ok || code != "code-J1" {
		t.Fatalf("J1 code %q %v", code, ok)
	}
	if _, ok := reg.JT808AuthCode("J2"); ok {
		t.Fatal("a hashed code was handed out")
	}
	if _, ok := reg.JT808AuthCode("M1"); ok {
		t.Fatal("an MQTT-only device has a JT/T 808 code")
	}
	code, ok := reg.JT808AuthCode("WF-T00042")
	if !ok || len(code) != 16 || code == reg.Fleets[0].Secret("WF-T00042")[:16] {
		t.Fatalf("fleet code %q: want 16 hex digits, not the MQTT secret", code)
	}
	for _, c := range []struct {
		dev, code string
		ok        bool
	}{
		{"J1", "code-J1", true}, {"J1", "code-J2", false}, {"J1", "", false},
		{"J2", "provisioned-code", true}, {"J2", "", false},
		{"WF-T00042", code, true}, {"WF-T00043", code, false},
		{"M1", "", false}, {"nobody", "x", false},
	} {
		if got := reg.AuthenticateJT808(c.dev, c.code); got != c.ok {
			t.Errorf("AuthenticateJT808(%s, %q) = %v", c.dev, c.code, got)
		}
	}
	profiles := reg.JT808Profiles()
	if len(profiles) != 2 || len(profiles["acme"]) != 1 || len(profiles[""]) != 2 {
		t.Fatalf("profiles %v", profiles)
	}
}

func TestRegistryJT808Invalid(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"devices:\n  - {id: A, class: trucks, jt808: {phone: '138', auth_code: x}}\n  - {id: B, class: trucks, jt808: {phone: '0138', auth_code: y}}\n",
			"jt808.phone 0138 already names device A"},
		{"devices:\n  - {id: A, class: trucks, jt808: {phone: '13a', auth_code: x}}\n", "want 1 to 20 digits"},
		{"devices:\n  - {id: A, class: trucks, jt808: {phone: '123456789012345678901', auth_code: x}}\n", "want 1 to 20 digits"},
		{"devices:\n  - {id: A, class: trucks, jt808: {phone: '138'}}\n", "set one of auth_code and auth_code_hash"},
		{"devices:\n  - {id: A, class: trucks, jt808: {phone: '138', auth_code: x, auth_code_hash: y}}\n", "set one of"},
		{"devices:\n  - {id: A, class: trucks, jt808: {phone: '138', auth_code_hash: nope}}\n", "jt808.auth_code_hash"},
		{"devices:\n  - {id: A, class: gauges, jt808: {phone: '138', auth_code: x}}\n", "only class trucks"},
		{"devices:\n  - {id: A, class: trucks, jt808: {phone: '138', auth_code: x, colour: red}}\n", "field colour not found"},
		{"fleets:\n  - {prefix: F, class: trucks, count: 100, key: 0123456789abcdef, jt808: {phone_prefix: '0139000000'}}\n", "phone_prefix"},
		{"fleets:\n  - {prefix: F, class: gauges, count: 10, key: 0123456789abcdef, jt808: {phone_prefix: '0139'}}\n", "only class trucks"},
		{"fleets:\n  - {prefix: F, class: trucks, count: 10, key: 0123456789abcdef, jt808: {phone_prefix: '0139'}}\ndevices:\n  - {id: A, class: trucks, jt808: {phone: '13900000001', auth_code: x}}\n",
			"already names device"},
	} {
		_, err := ParseRegistry("registry.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.yaml, err, c.want)
		}
	}
}

func TestConfigJT808(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (*Config, error) {
		p := filepath.Join(dir, "urbanwatch.yaml")
		os.WriteFile(p, []byte("registry: registry.yaml\n"+body), 0o600)
		return Load(p)
	}
	cfg, err := load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JT808.Listen != "" || cfg.JT808.MaxConnections != 20000 || cfg.JT808.IdleTimeout.Minutes() != 3 {
		t.Fatalf("defaults %+v", cfg.JT808)
	}
	cfg, err = load(`jt808:
  listen: 127.0.0.1:7611
  max_connections: 500
  idle_timeout: 90s
  profiles:
    acme:
      cover: {status_bit: 22, invert: true}
      body: {extra: 0xE5}
      load_kg: {extra: 0xE6, scale: 10}
      load_state_kg: {empty: 0, half: 8000, full: 16000}
`)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.JT808.Profiles["acme"]
	if *p.Cover.StatusBit != 22 || !p.Cover.Invert || p.Body.Extra != 0xE5 || p.Load.Scale != 10 || p.LoadStateKg.Full != 16000 {
		t.Fatalf("profile %+v", p)
	}
	for _, c := range []struct{ yaml, want string }{
		{"jt808: {listen: 7611}", "jt808.listen"},
		{"jt808: {max_connections: 0}", "jt808.max_connections"},
		{"jt808: {idle_timeout: 1s}", "jt808.idle_timeout"},
		{"jt808: {profiles: {a: {cover: {extra: 0x31}}}}", "cover.extra 0x31"},
		{"jt808: {profiles: {a: {cover: {extra: 0xE1, status_bit: 22}}}}", "exclusive"},
		{"jt808: {profiles: {a: {body: {status_bit: 2}}}}", "body.status_bit 2"},
		{"jt808: {profiles: {a: {body: {status_bit: 32}}}}", "body.status_bit 32"},
		{"jt808: {profiles: {a: {body: {extra: 0xE2, invert: true}}}}", "invert applies"},
		{"jt808: {profiles: {a: {load_kg: {extra: 0x100}}}}", "load_kg.extra"},
		{"jt808: {profiles: {a: {load_kg: {scale: -1}}}}", "load_kg.scale"},
		{"jt808: {profiles: {a: {load_state_kg: {full: -5}}}}", "load_state_kg"},
		{"jt808: {profiles: {a: {cover: {bit: 3}}}}", "field bit not found"},
	} {
		if _, err := load(c.yaml + "\n"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.yaml, err, c.want)
		}
	}
}
