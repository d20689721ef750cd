// Package config loads urbanwatch's service configuration and its device
// registry from YAML. Loading is strict: unknown keys, bad values and
// inconsistent settings are errors that name the file and, where they can,
// the line; defaults fill what is left out, and Validate checks the rest.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the service configuration (urbanwatch.yaml). Relative paths in it
// are relative to the file's folder.
type Config struct {
	// Registry is the device registry file.
	Registry string `yaml:"registry"`
	// City is the city supervision model (see LoadCity); optional: without
	// it nothing is judged against permits, sites or gauges.
	City string `yaml:"city"`
	// Alerting names who is told about alerts and how (LoadAlerting);
	// optional: without it the companies' compliance contacts are told,
	// and SMS go to the log.
	Alerting string `yaml:"alerting"`
	// DataDir holds the spool, the dead letters and a managed InfluxDB.
	DataDir string     `yaml:"data_dir"`
	Log     LogConfig  `yaml:"log"`
	HTTP    HTTPConfig `yaml:"http"`
	MQTT    MQTTConfig `yaml:"mqtt"`
	Ingest  Ingest     `yaml:"ingest"`
	Spool   Spool      `yaml:"spool"`
	Influx  Influx     `yaml:"influx"`
	// Console is the web console on http.listen (docs/console.md).
	Console Console `yaml:"console"`
	// JT808 is the JT/T 808 gateway for terminals that speak it instead of
	// MQTT (docs/jt808.md); off unless listen is set.
	JT808 JT808 `yaml:"jt808"`
	// Cluster makes this process one node of a cluster on NATS JetStream
	// (docs/cluster.md); off unless nats is set.
	Cluster Cluster `yaml:"cluster"`

	path string
}

// Cluster sets cluster mode. With nats set, ingest acknowledges a device
// once JetStream has its record (not the local spool), the rules run as
// partitions leased among the nodes, the InfluxDB writer drains a durable
// consumer, and the one node with alerting: true keeps the alert store,
// sends SMS and CAP, and serves the console.
type Cluster struct {
	// NATS lists the NATS server URLs, e.g. nats://10.0.0.1:4222.
	NATS []string `yaml:"nats"`
	// Node names this node in the cluster (its partition leases); unique.
	// Default: the host name.
	Node string `yaml:"node"`
	// Partitions is the record stream's partition count; every node must
	// agree (default 64).
	Partitions int `yaml:"partitions"`
	// Replicas of the streams and buckets (default 3; 1 for a
	// single-server NATS).
	Replicas int `yaml:"replicas"`
	// LeaseTTL is how long a silent node keeps its partitions (default
	// 10s); CheckpointEvery how often a partition saves its state (10s).
	LeaseTTL        time.Duration `yaml:"lease_ttl"`
	CheckpointEvery time.Duration `yaml:"checkpoint_every"`
	// AckWait is how long a record fetched by a node's InfluxDB writer
	// (or an event by the alerting bridge) may stay unacknowledged before
	// it is delivered again, to whoever fetches next: how long a dead
	// node's in-flight batch waits (default 30s).
	AckWait time.Duration `yaml:"ack_wait"`
	// Retention is how long the record and alert streams keep what they
	// hold (default 168h): the longest outage of a consumer (InfluxDB,
	// the alerting node) the cluster rides out without losing data.
	Retention time.Duration `yaml:"retention"`
	// Alerting makes this node the one that runs alerting and the console.
	Alerting bool `yaml:"alerting"`
	// Roles limits what the node does beyond ingest (every node runs the
	// broker): any of rules and store (the InfluxDB writer); default both.
	// Alerting is set apart above.
	Roles []string `yaml:"roles"`
	// User and PasswordFile log in to NATS with a user name and the
	// password read from the file (Password after Validate); or
	// CredentialsFile, a NATS .creds file (JWT and NKey seed) for an
	// operator-mode account. At most one of the two.
	User            string `yaml:"user"`
	Password        string `yaml:"-"`
	PasswordFile    string `yaml:"password_file"`
	CredentialsFile string `yaml:"credentials_file"`
	// TLSCAFile verifies the NATS servers' certificates (tls:// URLs, or
	// servers that require TLS); TLSCertFile and TLSKeyFile present a
	// client certificate to servers that verify one.
	TLSCAFile   string `yaml:"tls_ca_file"`
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// Enabled reports whether cluster mode is on.
func (c Cluster) Enabled() bool { return len(c.NATS) > 0 }

// Has reports whether the node takes role (rules or store).
func (c Cluster) Has(role string) bool {
	if len(c.Roles) == 0 {
		return true
	}
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// JT808 sets the JT/T 808 gateway.
type JT808 struct {
	// Listen is the TCP address terminals connect to, e.g. 0.0.0.0:7611;
	// "" (the default) runs no gateway.
	Listen string `yaml:"listen"`
	// MaxConnections caps open terminal connections; default 20000.
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout closes a connection silent this long; default 3m
	// (terminals send a heartbeat every 30-60 s).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Profiles say where each terminal model reports cover, body and load
	// (registry jt808.profile names one). "default" is built in (cover in
	// additional information 0xE1, body in 0xE2, load in 0xE3) and may be
	// redefined here.
	Profiles map[string]JT808Profile `yaml:"profiles"`
}

// JT808Profile is one terminal model's vendor fields.
type JT808Profile struct {
	// Cover: additional information byte 0 closed, 1 open, 2+ fault; or a
	// status bit, set = open.
	Cover JT808Source `yaml:"cover"`
	// Body: additional information byte 0 down, 1 raised; or a status bit,
	// set = raised.
	Body JT808Source `yaml:"body"`
	// Load is the load sensor: a big-endian unsigned additional
	// information item of 1-4 bytes, times scale kg.
	Load JT808Load `yaml:"load_kg"`
	// LoadStateKg gives a load for status bits 8-9 (empty, half, full)
	// when the report has no load item; unset: no load from them.
	LoadStateKg *JT808LoadStates `yaml:"load_state_kg"`
}

// JT808Source is one of: an additional information id (0xE1-0xFF) or a
// status bit (0-31, not 1-3 or 8-9); both unset means not reported.
type JT808Source struct {
	Extra     int  `yaml:"extra"`
	StatusBit *int `yaml:"status_bit"`
	// Invert: a set status bit is the resting state (closed, down).
	Invert bool `yaml:"invert"`
}

// JT808Load is the load sensor's additional information item.
type JT808Load struct {
	Extra int     `yaml:"extra"`
	Scale float64 `yaml:"scale"` // kg per unit; default 1
}

// JT808LoadStates are the loads, in kg, of the three load states.
type JT808LoadStates struct {
	Empty float64 `yaml:"empty"`
	Half  float64 `yaml:"half"`
	Full  float64 `yaml:"full"`
}

// Console sets the web console. Without a users file the console is off
// (its pages answer 404) and the alert API keeps its own bearer tokens.
type Console struct {
	// Users is the users file (LoadUsers), written by `urbanwatch user`.
	Users string `yaml:"users"`
	// TileURL is an optional map tile URL template
	// ("https://tiles.example/{z}/{x}/{y}.png"); without one the map shows
	// districts, sites and corridors on a plain background.
	TileURL string `yaml:"tile_url"`
	// SessionTTL is how long a sign-in lasts; default 12h (a night shift).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// SecureCookies marks the session cookie Secure even when urbanwatch
	// itself serves plain HTTP (behind a TLS-terminating proxy).
	SecureCookies bool `yaml:"secure_cookies"`
	// TrustedProxies are the addresses or CIDR blocks of the reverse
	// proxies in front of the console (an ingress, a TLS terminator).
	// Behind one, every browser arrives from the proxy's address; from a
	// trusted proxy the client's address is taken from X-Forwarded-For, so
	// the sign-in limit counts browsers, not the proxy. From anyone else
	// the header is ignored: it can be forged.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// LogConfig sets logging.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error; default info
	Format string `yaml:"format"` // json (default) or console
}

// HTTPConfig sets the HTTP listener for /metrics, /healthz and /readyz.
type HTTPConfig struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:8080
}

// MQTTConfig sets the embedded broker, or an external one.
type MQTTConfig struct {
	Listen         string   `yaml:"listen"`     // embedded broker TCP; default 127.0.0.1:1883
	TLSListen      string   `yaml:"tls_listen"` // embedded broker TLS; "" for none
	TLSCert        string   `yaml:"tls_cert"`
	TLSKey         string   `yaml:"tls_key"`
	ClientCA       string   `yaml:"client_ca"` // verify device certificates; CN names the device
	MaxPacketBytes int      `yaml:"max_packet_bytes"`
	External       External `yaml:"external"`
}

// External selects external broker mode when URL is set: urbanwatch then runs
// no broker of its own and subscribes to the external one.
type External struct {
	URL          string `yaml:"url"` // tcp://host:1883, ssl://host:8883
	ClientID     string `yaml:"client_id"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	MaxInflight  int    `yaml:"max_inflight"`
}

// Ingest sets validation limits.
type Ingest struct {
	MaxPayloadBytes int           `yaml:"max_payload_bytes"` // default 4096
	MaxFuture       time.Duration `yaml:"max_future"`        // default 5m
	MaxAge          time.Duration `yaml:"max_age"`           // default 168h
	LateAfter       time.Duration `yaml:"late_after"`        // default 1m
	DeadLetterBytes ByteSize      `yaml:"deadletter_bytes"`  // per file; default 16MiB
	DeadLetterFiles int           `yaml:"deadletter_files"`  // rotated files kept; default 4
}

// Spool sets the on-disk queue in front of InfluxDB.
type Spool struct {
	SegmentBytes ByteSize `yaml:"segment_bytes"` // default 64MiB
	MaxBytes     ByteSize `yaml:"max_bytes"`     // disk ceiling; default 10GiB
	WarnRatio    float64  `yaml:"warn_ratio"`    // default 0.8
}

// Influx sets where records are stored. An empty URL runs a managed InfluxDB
// 1.8.10 on 127.0.0.1 under DataDir, built on first use.
type Influx struct {
	URL             string        `yaml:"url"`
	Token           string        `yaml:"token"` // "user:password" for InfluxDB 1.8 with auth
	TokenFile       string        `yaml:"token_file"`
	Org             string        `yaml:"org"`
	Database        string        `yaml:"database"`         // default urbanwatch
	RetentionPolicy string        `yaml:"retention_policy"` // default autogen
	BatchLines      int           `yaml:"batch_lines"`      // default 5000
	Timeout         time.Duration `yaml:"timeout"`          // default 30s
}

// Bucket returns the v2-API bucket name, "database/retention_policy".
func (i Influx) Bucket() string { return i.Database + "/" + i.RetentionPolicy }

// ByteSize is a size in bytes, written as an integer or with a unit: 512KiB,
// 64MiB, 10GiB (also KB, MB, GB as powers of 1,000).
type ByteSize int64

// UnmarshalText parses a size with an optional unit.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("size %q: want a whole number of bytes, optionally with KiB, MiB, GiB", text)
	}
	*b = ByteSize(n * mult)
	return nil
}

// Default returns the configuration used when a key is left out.
func Default() *Config {
	return &Config{
		DataDir: "data",
		Log:     LogConfig{Level: "info", Format: "json"},
		HTTP:    HTTPConfig{Listen: "127.0.0.1:8080"},
		MQTT: MQTTConfig{Listen: "127.0.0.1:1883", MaxPacketBytes: 64 << 10,
			External: External{ClientID: "urbanwatch-ingest", MaxInflight: 1000}},
		Ingest: Ingest{MaxPayloadBytes: 4096, MaxFuture: 5 * time.Minute, MaxAge: 7 * 24 * time.Hour,
			LateAfter: time.Minute, DeadLetterBytes: 16 << 20, DeadLetterFiles: 4},
		Spool:   Spool{SegmentBytes: 64 << 20, MaxBytes: 10 << 30, WarnRatio: 0.8},
		Influx:  Influx{Database: "urbanwatch", RetentionPolicy: "autogen", BatchLines: 5000, Timeout: 30 * time.Second},
		Console: Console{SessionTTL: 12 * time.Hour},
		JT808:   JT808{MaxConnections: 20000, IdleTimeout: 3 * time.Minute},
		Cluster: Cluster{Partitions: 64, Replicas: 3, LeaseTTL: 10 * time.Second, CheckpointEvery: 10 * time.Second,
			AckWait: 30 * time.Second, Retention: 7 * 24 * time.Hour},
	}
}

// Load reads a configuration file over the defaults and validates it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg := Default()
	if err := decodeStrict(path, data, cfg); err != nil {
		return nil, err
	}
	cfg.path = path
	cfg.resolve(filepath.Dir(path))
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// resolve makes relative paths relative to dir.
func (c *Config) resolve(dir string) {
	for _, p := range []*string{&c.Registry, &c.City, &c.Alerting, &c.DataDir, &c.MQTT.TLSCert, &c.MQTT.TLSKey, &c.MQTT.ClientCA,
		&c.MQTT.External.PasswordFile, &c.Influx.TokenFile, &c.Console.Users} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// Validate checks values and their combinations, and reads secret files.
// It reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Registry == "" {
		bad("registry: the device registry file is required")
	}
	if c.DataDir == "" {
		bad("data_dir is required")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("log.format %q: want json or console", c.Log.Format)
	}
	if c.MQTT.External.URL == "" && c.MQTT.Listen == "" && c.MQTT.TLSListen == "" {
		bad("mqtt: set listen or tls_listen for the embedded broker, or external.url")
	}
	if c.MQTT.TLSListen != "" && (c.MQTT.TLSCert == "" || c.MQTT.TLSKey == "") {
		bad("mqtt.tls_listen needs tls_cert and tls_key")
	}
	if c.MQTT.TLSListen == "" && (c.MQTT.TLSCert != "" || c.MQTT.TLSKey != "" || c.MQTT.ClientCA != "") {
		bad("mqtt.tls_cert, tls_key and client_ca take effect only with tls_listen")
	}
	if c.MQTT.External.URL != "" && c.MQTT.TLSListen != "" {
		bad("mqtt.tls_listen is for the embedded broker; in external mode the external broker terminates TLS")
	}
	if c.HTTP.Listen == "" {
		bad("http.listen is required (the /metrics, /healthz and /readyz address)")
	}
	if c.MQTT.External.URL != "" && !hasScheme(c.MQTT.External.URL, "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss") {
		bad("mqtt.external.url %q: want tcp://, ssl://, ws:// or wss://", c.MQTT.External.URL)
	}
	if c.MQTT.External.MaxInflight < 1 {
		bad("mqtt.external.max_inflight must be at least 1")
	}
	if c.MQTT.MaxPacketBytes < c.Ingest.MaxPayloadBytes+512 {
		bad("mqtt.max_packet_bytes %d must exceed ingest.max_payload_bytes %d, so oversized payloads are rejected with a reason",
			c.MQTT.MaxPacketBytes, c.Ingest.MaxPayloadBytes)
	}
	if c.Ingest.MaxPayloadBytes < 256 {
		bad("ingest.max_payload_bytes %d: at least 256", c.Ingest.MaxPayloadBytes)
	}
	if c.Ingest.MaxFuture <= 0 || c.Ingest.MaxAge <= 0 || c.Ingest.LateAfter <= 0 {
		bad("ingest.max_future, max_age and late_after must be positive")
	}
	if c.Spool.SegmentBytes < 1<<20 {
		bad("spool.segment_bytes %d: at least 1MiB", c.Spool.SegmentBytes)
	}
	if c.Spool.MaxBytes < 2*c.Spool.SegmentBytes {
		bad("spool.max_bytes %d must be at least twice segment_bytes", c.Spool.MaxBytes)
	}
	if c.Spool.WarnRatio <= 0 || c.Spool.WarnRatio >= 1 {
		bad("spool.warn_ratio %g: want between 0 and 1", c.Spool.WarnRatio)
	}
	if c.Influx.URL != "" && !hasScheme(c.Influx.URL, "http", "https") {
		bad("influx.url %q: want http:// or https://", c.Influx.URL)
	}
	if c.Influx.Database == "" || c.Influx.RetentionPolicy == "" {
		bad("influx.database and influx.retention_policy are required")
	}
	if c.Influx.BatchLines < 1 || c.Influx.BatchLines > 100_000 {
		bad("influx.batch_lines %d: want 1 to 100000", c.Influx.BatchLines)
	}
	if c.Cluster.Enabled() {
		for _, u := range c.Cluster.NATS {
			if !hasScheme(u, "nats", "tls") {
				bad("cluster.nats %q: want nats:// or tls://", u)
			}
		}
		if c.Cluster.Partitions < 1 || c.Cluster.Partitions > 4096 {
			bad("cluster.partitions %d: want 1 to 4096", c.Cluster.Partitions)
		}
		if c.Cluster.Replicas != 1 && c.Cluster.Replicas != 3 && c.Cluster.Replicas != 5 {
			bad("cluster.replicas %d: want 1, 3 or 5", c.Cluster.Replicas)
		}
		if c.Cluster.LeaseTTL < time.Second || c.Cluster.CheckpointEvery < 100*time.Millisecond || c.Cluster.AckWait < time.Second {
			bad("cluster.lease_ttl and ack_wait must be at least 1s, checkpoint_every at least 100ms")
		}
		for _, r := range c.Cluster.Roles {
			if r != "rules" && r != "store" {
				bad("cluster.roles %q: want rules or store", r)
			}
		}
		if c.Cluster.Retention < time.Hour {
			bad("cluster.retention %s: at least 1h", c.Cluster.Retention)
		}
		if err := readSecret(&c.Cluster.Password, &c.Cluster.PasswordFile); err != nil {
			bad("cluster.password_file: %v", err)
		}
		if (c.Cluster.User == "") != (c.Cluster.Password == "") {
			bad("cluster.user and cluster.password_file go together")
		}
		if c.Cluster.User != "" && c.Cluster.CredentialsFile != "" {
			bad("cluster: log in to NATS with user and password_file or with credentials_file, not both")
		}
		if (c.Cluster.TLSCertFile == "") != (c.Cluster.TLSKeyFile == "") {
			bad("cluster.tls_cert_file and cluster.tls_key_file go together")
		}
		if c.Influx.URL == "" {
			bad("cluster mode needs influx.url: every node writes to the one InfluxDB (a managed InfluxDB per node would split the records)")
		}
		if c.MQTT.External.URL != "" {
			bad("cluster mode ingests through the embedded broker (or jt808); mqtt.external is for a single node")
		}
	}
	if c.Console.SessionTTL < time.Minute || c.Console.SessionTTL > 7*24*time.Hour {
		bad("console.session_ttl %s: want 1m to 168h", c.Console.SessionTTL)
	}
	for _, p := range c.Console.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("console.trusted_proxies %q: want an address or a CIDR block", p)
			}
		}
	}
	if c.Console.TileURL != "" && !hasScheme(c.Console.TileURL, "http", "https") {
		bad("console.tile_url %q: want http:// or https://", c.Console.TileURL)
	}
	errs = append(errs, c.JT808.validate()...)
	if err := readSecret(&c.MQTT.External.Password, &c.MQTT.External.PasswordFile); err != nil {
		bad("mqtt.external.password_file: %v", err)
	}
	if err := readSecret(&c.Influx.Token, &c.Influx.TokenFile); err != nil {
		bad("influx.token_file: %v", err)
	}
	return errors.Join(errs...)
}

func hasScheme(url string, schemes ...string) bool {
	for _, s := range schemes {
		if strings.HasPrefix(url, s+"://") {
			return true
		}
	}
	return false
}

// readSecret replaces *dst with the content of *file and clears *file, so
// that validating again (after flags override values) reads nothing twice.
func readSecret(dst, file *string) error {
	if *file == "" {
		return nil
	}
	if *dst != "" {
		return errors.New("set the value or the file, not both")
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	*dst, *file = strings.TrimSpace(string(b)), ""
	return nil
}

func (j *JT808) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if j.Listen != "" {
		if _, _, err := net.SplitHostPort(j.Listen); err != nil {
			bad("jt808.listen %q: want host:port", j.Listen)
		}
	}
	if j.MaxConnections < 1 || j.MaxConnections > 1_000_000 {
		bad("jt808.max_connections %d: want 1 to 1000000", j.MaxConnections)
	}
	if j.IdleTimeout < 10*time.Second || j.IdleTimeout > time.Hour {
		bad("jt808.idle_timeout %s: want 10s to 1h", j.IdleTimeout)
	}
	names := make([]string, 0, len(j.Profiles))
	for name := range j.Profiles {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := j.Profiles[name]
		for _, s := range []struct {
			what string
			src  JT808Source
		}{{"cover", p.Cover}, {"body", p.Body}} {
			switch {
			case s.src.Extra != 0 && s.src.StatusBit != nil:
				bad("jt808.profiles.%s.%s: extra and status_bit are exclusive", name, s.what)
			case s.src.Extra != 0 && (s.src.Extra < 0xE1 || s.src.Extra > 0xFF):
				bad("jt808.profiles.%s.%s.extra 0x%X: vendor additional information ids are 0xE1 to 0xFF", name, s.what, s.src.Extra)
			case s.src.StatusBit != nil && (*s.src.StatusBit < 0 || *s.src.StatusBit > 31 ||
				*s.src.StatusBit >= 1 && *s.src.StatusBit <= 3 || *s.src.StatusBit == 8 || *s.src.StatusBit == 9):
				bad("jt808.profiles.%s.%s.status_bit %d: want 0 to 31 but not 1-3 or 8-9 (fix, hemispheres, load state)", name, s.what, *s.src.StatusBit)
			case s.src.Invert && s.src.StatusBit == nil:
				bad("jt808.profiles.%s.%s.invert applies to status_bit only", name, s.what)
			}
		}
		if p.Load.Extra != 0 && (p.Load.Extra < 0xE1 || p.Load.Extra > 0xFF) {
			bad("jt808.profiles.%s.load_kg.extra 0x%X: vendor additional information ids are 0xE1 to 0xFF", name, p.Load.Extra)
		}
		if p.Load.Scale < 0 || p.Load.Scale > 1000 {
			bad("jt808.profiles.%s.load_kg.scale %g: want 0 (default 1) to 1000", name, p.Load.Scale)
		}
		if s := p.LoadStateKg; s != nil {
			for _, v := range []float64{s.Empty, s.Half, s.Full} {
				if v < 0 || v > 100_000 {
					bad("jt808.profiles.%s.load_state_kg: %g outside 0 to 100000", name, v)
					break
				}
			}
		}
	}
	return errs
}
