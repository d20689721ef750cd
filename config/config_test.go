package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

func TestRegistryFleetAndDevices(t *testing.T) {
	hash := HashSecret("bench-secret")
	r, err := ParseRegistry("r.yaml", []byte(`
fleets:
  - prefix: WF-T
    class: trucks
    count: 12
    width: 3
    key: 0123456789abcdef-key
devices:
  - id: G1
    class: gauges
    secret_hash: `+hash+`
  - id: C1
    class: trucks
    cert_cn: cert-one
`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 14 {
		t.Fatalf("Len = %d", r.Len())
	}
	var secret string
	r.AllDevices(func(d *Device, s string) {
		if d.ID == "WF-T012" {
			secret = s
		}
	})
	if secret == "" || !r.AuthenticatePassword("WF-T012", secret) || r.AuthenticatePassword("WF-T011", secret) {
		t.Error("fleet secret derivation")
	}
	if _, ok := r.Lookup("WF-T013"); ok {
		t.Error("device past the fleet count exists")
	}
	if !r.AuthenticatePassword("G1", "bench-secret") || r.AuthenticatePassword("G1", "bench-secret2") {
		t.Error("hashed secret")
	}
	if r.AuthenticatePassword("C1", "") {
		t.Error("certificate-only device authenticated by password")
	}
	if id, ok := r.IdentifyCN("cert-one"); !ok || id != "C1" {
		t.Errorf("IdentifyCN = %q %v", id, ok)
	}
	if _, ok := r.IdentifyCN("C1"); ok {
		t.Error("a device with cert_cn must not be identified by its id as CN")
	}
	if c, ok := r.Class("G1"); !ok || c != telemetry.ClassGauge {
		t.Errorf("Class(G1) = %v %v", c, ok)
	}
}

func TestRegistryErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct {
		yaml, want string
	}{
		{"devices:\n  - id: A\n    class: trucks\n    colour: red\n", "line 4: field colour not found"},
		{"devices:\n  - id: A\n    class: trucks\n  - id: A\n    class: trucks\n", "r.yaml:4: device A: already registered at line 2"},
		{"devices:\n  - id: A\n    class: boats\n", "r.yaml:2: device A: class \"boats\""},
		{"devices:\n  - id: 'a b'\n    class: trucks\n", "r.yaml:2: device id \"a b\""},
		{"devices:\n  - id: A\n    class: trucks\n    secret_hash: md5:x\n", "r.yaml:2: device A: secret_hash"},
		{"fleets:\n  - prefix: X\n    class: trucks\n    count: 3\n    key: short\n", "r.yaml:2: fleet X: key must be at least 16"},
		{"fleets:\n  - prefix: X\n    class: trucks\n    count: 0\n    key: 0123456789abcdef\n", "count 0"},
	} {
		_, err := ParseRegistry("r.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.yaml, err, c.want)
		}
	}
}

func TestVerifySecret(t *testing.T) {
	h := HashSecret("s3cret")
	if h == HashSecret("s3cret") {
		t.Error("hash is not salted")
	}
	if !VerifySecret(h, "s3cret") || VerifySecret(h, "s3cre") || VerifySecret("garbage", "s3cret") {
		t.Error("VerifySecret")
	}
}

func TestLoadDemoConfig(t *testing.T) {
	cfg, err := Load("../deploy/demo/urbanwatch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Spool.MaxBytes != 10<<30 || cfg.Spool.SegmentBytes != 64<<20 || cfg.Ingest.MaxAge != 168*time.Hour {
		t.Errorf("sizes/durations: %+v %+v", cfg.Spool, cfg.Ingest)
	}
	if !filepath.IsAbs(cfg.Registry) && !strings.HasPrefix(cfg.Registry, "../deploy/demo") {
		t.Errorf("registry path not resolved against the config file: %s", cfg.Registry)
	}
	reg, err := LoadRegistry(cfg.Registry)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Len() != 20302 {
		t.Errorf("demo registry has %d devices", reg.Len())
	}
	if !reg.AuthenticatePassword("WF-DEV-TEST", "weifang-dev-terminal-secret") {
		t.Error("the documented bench terminal secret does not authenticate")
	}
	if !reg.AuthenticatePassword("WF-CONSOLE", "weifang-duty-console-secret") {
		t.Error("the documented duty console secret does not authenticate")
	}
	city, err := LoadCity(cfg.City, reg)
	if err != nil {
		t.Fatalf("demo city: %v", err)
	}
	if len(city.Trucks) != 2000 || len(city.Gauges) != 300 {
		t.Errorf("demo city: %d trucks, %d gauges", len(city.Trucks), len(city.Gauges))
	}
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	for _, c := range []struct{ yaml, want string }{
		{"registry: r.yaml\nspool:\n  max_bytes: 1MiB\n", "spool.max_bytes"},
		{"registry: r.yaml\nspool:\n  max_bytes: lots\n", "size \"lots\""},
		{"registry: r.yaml\nlog:\n  level: loud\n", "log.level"},
		{"registry: r.yaml\nmqtt:\n  external:\n    url: http://x\n", "mqtt.external.url"},
		{"registry: r.yaml\ninflux:\n  url: tcp://x\n", "influx.url"},
		{"registry: r.yaml\nmqtt:\n  tls_listen: :8883\n", "tls_cert and tls_key"},
		{"registry: r.yaml\nmqt:\n  listen: x\n", "field mqt not found"},
		{"data_dir: x\n", "registry: the device registry file is required"},
		{"registry: r.yaml\ningest:\n  max_payload_bytes: 70000\n", "max_packet_bytes"},
		{"registry: r.yaml\ncluster:\n  nats: [nats://127.0.0.1:4222]\n", "cluster mode needs influx.url"},
		{"registry: r.yaml\ninflux: {url: http://i}\ncluster:\n  nats: [http://127.0.0.1:4222]\n", "cluster.nats"},
		{"registry: r.yaml\ninflux: {url: http://i}\ncluster:\n  nats: [nats://n]\n  replicas: 2\n", "cluster.replicas"},
		{"registry: r.yaml\ninflux: {url: http://i}\ncluster:\n  nats: [nats://n]\n  roles: [ingest]\n", "cluster.roles"},
		{"registry: r.yaml\ninflux: {url: http://i}\ncluster:\n  nats: [nats://n]\n  retention: 10m\n", "cluster.retention"},
		{"registry: r.yaml\ninflux: {url: http://i}\ncluster:\n  nats: [nats://n]\n  user: uw\n", "cluster.user and cluster.password_file"},
		{"registry: r.yaml\ninflux: {url: http://i}\ncluster:\n  nats: [nats://n]\n  tls_cert_file: c.pem\n", "cluster.tls_cert_file and cluster.tls_key_file"},
		{"registry: r.yaml\ninflux: {url: http://i}\ncluster:\n  nats: [nats://n]\n  password_file: /nonexistent/pw\n", "cluster.password_file"},
	} {
		_, err := Load(write(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.yaml, err, c.want)
		}
	}
	if cfg, err := Load(write("registry: r.yaml\ninflux: {url: http://i}\ncluster:\n  nats: [nats://n]\n  roles: [store]\n")); err != nil ||
		!cfg.Cluster.Enabled() || cfg.Cluster.Has("rules") || !cfg.Cluster.Has("store") || cfg.Cluster.Partitions != 64 {
		t.Errorf("cluster section: %+v %v", cfg, err)
	}
	cfg, err := Load(write("registry: r.yaml\nspool:\n  max_bytes: 2147483648\n"))
	if err != nil || cfg.Spool.MaxBytes != 2<<30 || cfg.Registry != filepath.Join(dir, "r.yaml") {
		t.Errorf("plain integer size: %v %v", cfg, err)
	}
}
