package config

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// Registry is the set of devices allowed to publish, loaded from the registry
// file. It is immutable once loaded and safe for concurrent use.
type Registry struct {
	// Devices lists the individually registered devices.
	Devices []Device `yaml:"devices"`
	// Fleets lists bulk-provisioned device ranges whose secrets are derived
	// from one fleet key (see Fleet).
	Fleets []Fleet `yaml:"fleets"`

	byID    map[string]*Device
	byCN    map[string]*Device
	byPhone map[string]*Device // JT/T 808 phone numbers, without leading zeros
	path    string
	lines   map[*Device]int
}

// Device is one registered device.
type Device struct {
	// ID is the device id: the {device} segment of its topics and its MQTT
	// username. Letters, digits, '-', '_' and '.', at most 64 characters.
	ID string `yaml:"id"`
	// Class is "trucks", "gauges" or "operators" (alert consumers, which may
	// only subscribe to urbanwatch/alerts/#).
	Class telemetry.Class `yaml:"class"`
	// SecretHash is the device secret as "sha256:<salt hex>:<hash hex>",
	// made by HashSecret. Empty means the device may only authenticate
	// with a TLS client certificate.
	SecretHash string `yaml:"secret_hash"`
	// CertCN is the TLS client certificate common name that identifies the
	// device; empty means the ID.
	CertCN string `yaml:"cert_cn"`
	// JT808 is the device's identity as a JT/T 808 terminal (class trucks
	// only; docs/jt808.md); nil when it speaks only MQTT.
	JT808 *JT808Identity `yaml:"jt808"`

	fleet *Fleet
}

// JT808Identity is how a JT/T 808 terminal is known: by the phone number
// in its frame headers, and by the authentication code it presents.
type JT808Identity struct {
	// Phone is the terminal phone number (终端手机号), up to 12 digits for
	// 2011/2013 terminals and 20 for 2019 ones; leading zeros do not count.
	Phone string `yaml:"phone"`
	// AuthCode is the authentication code, handed to the terminal when it
	// registers; AuthCodeHash keeps only its salted hash (HashSecret)
	// instead, for terminals provisioned with their code. One is required.
	AuthCode     string `yaml:"auth_code"`
	AuthCodeHash string `yaml:"auth_code_hash"`
	// Profile names the urbanwatch.yaml jt808.profiles entry that says
	// where the terminal model reports cover, body and load; "" is
	// "default".
	Profile string `yaml:"profile"`
}

// FleetJT808 gives every device of a fleet a JT/T 808 identity: phone
// PhonePrefix followed by the device number, zero-padded to 12 digits, and
// authentication code hex(HMAC-SHA256(fleet key, "jt808:" + device id))[:16].
type FleetJT808 struct {
	PhonePrefix string `yaml:"phone_prefix"`
	Profile     string `yaml:"profile"`
}

// Fleet is a range of devices named Prefix followed by a zero-padded number
// from 1 to Count (Width digits). Each device's secret is
// hex(HMAC-SHA256(fleet key, device id)), the derivation used by group
// enrollments in cloud IoT device provisioning: the factory flashes each
// terminal with its derived secret and only the fleet key is kept here.
type Fleet struct {
	Prefix string          `yaml:"prefix"`
	Class  telemetry.Class `yaml:"class"`
	Count  int             `yaml:"count"`
	Width  int             `yaml:"width"`
	// Key is the fleet key; KeyFile names a file that holds it instead
	// (relative paths are relative to the registry file).
	Key     string `yaml:"key"`
	KeyFile string `yaml:"key_file"`
	// JT808, when set, makes the fleet's devices JT/T 808 terminals too.
	JT808 *FleetJT808 `yaml:"jt808"`
}

// JT808Phone returns the JT/T 808 phone number of the fleet's n-th device.
func (f *Fleet) JT808Phone(n int) string {
	return fmt.Sprintf("%s%0*d", f.JT808.PhonePrefix, 12-len(f.JT808.PhonePrefix), n)
}

// JT808AuthCode returns the derived JT/T 808 authentication code of device
// id in the fleet.
func (f *Fleet) JT808AuthCode(id string) string {
	m := hmac.New(sha256.New, []byte(f.Key))
	m.Write([]byte("jt808:" + id))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// DeviceID returns the id of the fleet's n-th device (1-based).
func (f *Fleet) DeviceID(n int) string {
	return fmt.Sprintf("%s%0*d", f.Prefix, f.Width, n)
}

// Secret returns the derived secret of device id in the fleet.
func (f *Fleet) Secret(id string) string {
	m := hmac.New(sha256.New, []byte(f.Key))
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

var (
	deviceIDPattern   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	jt808PhonePattern = regexp.MustCompile(`^[0-9]{1,20}$`)
)

// normalizePhone drops leading zeros (jt808.NormalizePhone).
func normalizePhone(p string) string {
	for len(p) > 1 && p[0] == '0' {
		p = p[1:]
	}
	return p
}

// LoadRegistry reads and validates a registry file. Unknown keys, duplicate
// ids and bad values are errors that name the file and line.
func LoadRegistry(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	return ParseRegistry(path, data)
}

// ParseRegistry is LoadRegistry on bytes already read; path is used in error
// messages and to resolve key files.
func ParseRegistry(path string, data []byte) (*Registry, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r := &Registry{path: path}
	if err := decodeStrict(path, data, r); err != nil {
		return nil, err
	}
	lines := entryLines(&root, "devices")
	fleetLines := entryLines(&root, "fleets")
	var errs []string
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s:%d: %s", path, line, fmt.Sprintf(format, args...)))
	}
	r.byID = make(map[string]*Device)
	r.byCN = make(map[string]*Device)
	r.byPhone = make(map[string]*Device)
	r.lines = make(map[*Device]int)
	add := func(d *Device, line int) {
		if !deviceIDPattern.MatchString(d.ID) {
			bad(line, "device id %q: want 1-64 of A-Z a-z 0-9 . _ -", d.ID)
			return
		}
		if d.Class != telemetry.ClassTruck && d.Class != telemetry.ClassGauge && d.Class != telemetry.ClassOperator {
			bad(line, "device %s: class %q: want trucks, gauges or operators", d.ID, d.Class)
		}
		if prev, dup := r.byID[d.ID]; dup {
			bad(line, "device %s: already registered at line %d", d.ID, r.lines[prev])
			return
		}
		r.byID[d.ID] = d
		r.lines[d] = line
		cn := d.CertCN
		if cn == "" {
			cn = d.ID
		}
		if d.fleet == nil {
			if prev, dup := r.byCN[cn]; dup {
				bad(line, "device %s: certificate CN %q already names device %s", d.ID, cn, prev.ID)
			}
			r.byCN[cn] = d
		}
		if j := d.JT808; j != nil {
			if d.Class != telemetry.ClassTruck {
				bad(line, "device %s: jt808: only class trucks speak JT/T 808", d.ID)
			}
			if !jt808PhonePattern.MatchString(j.Phone) {
				bad(line, "device %s: jt808.phone %q: want 1 to 20 digits", d.ID, j.Phone)
				return
			}
			key := normalizePhone(j.Phone)
			if prev, dup := r.byPhone[key]; dup {
				bad(line, "device %s: jt808.phone %s already names device %s", d.ID, j.Phone, prev.ID)
				return
			}
			r.byPhone[key] = d
		}
	}
	for i := range r.Devices {
		d := &r.Devices[i]
		line := lineAt(lines, i)
		if d.SecretHash != "" {
			if _, _, err := parseHash(d.SecretHash); err != nil {
				bad(line, "device %s: secret_hash: %v", d.ID, err)
			}
		}
		if j := d.JT808; j != nil {
			switch {
			case (j.AuthCode == "") == (j.AuthCodeHash == ""):
				bad(line, "device %s: jt808: set one of auth_code and auth_code_hash", d.ID)
			case len(j.AuthCode) > 255:
				bad(line, "device %s: jt808.auth_code: at most 255 bytes", d.ID)
			case j.AuthCodeHash != "":
				if _, _, err := parseHash(j.AuthCodeHash); err != nil {
					bad(line, "device %s: jt808.auth_code_hash: %v", d.ID, err)
				}
			}
		}
		add(d, line)
	}
	for i := range r.Fleets {
		f := &r.Fleets[i]
		line := lineAt(fleetLines, i)
		if f.KeyFile != "" {
			if f.Key != "" {
				bad(line, "fleet %s: key and key_file are exclusive", f.Prefix)
			}
			kp := f.KeyFile
			if !filepath.IsAbs(kp) {
				kp = filepath.Join(filepath.Dir(path), kp)
			}
			k, err := os.ReadFile(kp)
			if err != nil {
				bad(line, "fleet %s: key_file: %v", f.Prefix, err)
			}
			f.Key = strings.TrimSpace(string(k))
		}
		if len(f.Key) < 16 {
			bad(line, "fleet %s: key must be at least 16 characters", f.Prefix)
		}
		if f.Count < 1 || f.Count > 1_000_000 {
			bad(line, "fleet %s: count %d: want 1 to 1000000", f.Prefix, f.Count)
			continue
		}
		if f.Class != telemetry.ClassTruck && f.Class != telemetry.ClassGauge && f.Class != telemetry.ClassOperator {
			bad(line, "fleet %s: class %q: want trucks, gauges or operators", f.Prefix, f.Class)
			continue
		}
		if f.Width == 0 {
			f.Width = len(fmt.Sprint(f.Count))
		}
		if j := f.JT808; j != nil {
			if !jt808PhonePattern.MatchString(j.PhonePrefix) || len(j.PhonePrefix)+len(fmt.Sprint(f.Count)) > 12 {
				bad(line, "fleet %s: jt808.phone_prefix %q: want digits leaving room for %d-digit device numbers in 12", f.Prefix, j.PhonePrefix, len(fmt.Sprint(f.Count)))
				continue
			}
			if f.Class != telemetry.ClassTruck {
				bad(line, "fleet %s: jt808: only class trucks speak JT/T 808", f.Prefix)
				continue
			}
		}
		for n := 1; n <= f.Count; n++ {
			d := &Device{ID: f.DeviceID(n), Class: f.Class, fleet: f}
			if f.JT808 != nil {
				d.JT808 = &JT808Identity{Phone: f.JT808Phone(n), Profile: f.JT808.Profile}
			}
			add(d, line)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid registry:\n  %s", strings.Join(errs, "\n  "))
	}
	return r, nil
}

// Len returns the number of registered devices, fleets expanded.
func (r *Registry) Len() int { return len(r.byID) }

// Lookup returns the device registered under id.
func (r *Registry) Lookup(id string) (*Device, bool) {
	d, ok := r.byID[id]
	return d, ok
}

// LookupCN returns the device whose TLS client certificate carries the
// common name cn. Fleet devices are matched by id.
func (r *Registry) LookupCN(cn string) (*Device, bool) {
	if d, ok := r.byCN[cn]; ok {
		return d, true
	}
	d, ok := r.byID[cn]
	if ok && d.fleet == nil && d.CertCN != "" && d.CertCN != cn {
		return nil, false
	}
	return d, ok
}

// Authenticate reports whether secret is the secret of device id. It takes
// the same time whether the id exists or not.
func (r *Registry) Authenticate(id, secret string) (*Device, bool) {
	d, ok := r.byID[id]
	if !ok {
		_ = VerifySecret("sha256:00:0000000000000000000000000000000000000000000000000000000000000000", secret)
		return nil, false
	}
	if d.fleet != nil {
		want := d.fleet.Secret(id)
		return d, subtle.ConstantTimeCompare([]byte(want), []byte(secret)) == 1
	}
	if d.SecretHash == "" {
		return d, false
	}
	return d, VerifySecret(d.SecretHash, secret)
}

// AllDevices calls fn for every registered device, fleets expanded, with the
// device's secret where the registry can derive it (fleet devices) or "".
// The simulator uses it to log in as the demo devices.
func (r *Registry) AllDevices(fn func(d *Device, secret string)) {
	for i := range r.Devices {
		fn(&r.Devices[i], "")
	}
	for i := range r.Fleets {
		f := &r.Fleets[i]
		for n := 1; n <= f.Count; n++ {
			id := f.DeviceID(n)
			fn(r.byID[id], f.Secret(id))
		}
	}
}

// HashSecret returns the registry form of a device secret: a random 16-byte
// salt and SHA-256(salt || secret). Device secrets are random tokens of at
// least 128 bits, so a fast hash is enough; what it protects against is a
// leaked registry file handing out working credentials.
func HashSecret(secret string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	sum := sha256.Sum256(append(salt, secret...))
	return "sha256:" + hex.EncodeToString(salt) + ":" + hex.EncodeToString(sum[:])
}

// VerifySecret reports whether secret matches a hash made by HashSecret, in
// constant time.
func VerifySecret(hash, secret string) bool {
	salt, want, err := parseHash(hash)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(append(salt, secret...))
	return subtle.ConstantTimeCompare(sum[:], want) == 1
}

func parseHash(h string) (salt, sum []byte, err error) {
	parts := strings.Split(h, ":")
	if len(parts) != 3 || parts[0] != "sha256" {
		return nil, nil, fmt.Errorf("want sha256:<salt hex>:<hash hex>")
	}
	if salt, err = hex.DecodeString(parts[1]); err != nil {
		return nil, nil, fmt.Errorf("salt: %w", err)
	}
	if sum, err = hex.DecodeString(parts[2]); err != nil || len(sum) != sha256.Size {
		return nil, nil, fmt.Errorf("hash: want 64 hex digits")
	}
	return salt, sum, nil
}

// AuthenticatePassword reports whether secret is device id's secret.
func (r *Registry) AuthenticatePassword(id, secret string) bool {
	_, ok := r.Authenticate(id, secret)
	return ok
}

// IdentifyCN returns the id of the device whose client certificate carries
// common name cn.
func (r *Registry) IdentifyCN(cn string) (string, bool) {
	d, ok := r.LookupCN(cn)
	if !ok {
		return "", false
	}
	return d.ID, true
}

// Class returns the class of a registered device.
func (r *Registry) Class(id string) (telemetry.Class, bool) {
	d, ok := r.byID[id]
	if !ok {
		return "", false
	}
	return d.Class, true
}

// JT808Terminal returns the device registered under JT/T 808 phone number
// phone (leading zeros ignored) and its profile name.
func (r *Registry) JT808Terminal(phone string) (device, profile string, ok bool) {
	d, ok := r.byPhone[normalizePhone(phone)]
	if !ok {
		return "", "", false
	}
	return d.ID, d.JT808.Profile, true
}

// JT808AuthCode returns the JT/T 808 authentication code of a device, when
// the registry holds it (auth_code, or derived for a fleet); ok is false
// when it keeps only a hash, or the device is not a JT/T 808 terminal.
func (r *Registry) JT808AuthCode(device string) (code string, ok bool) {
	d, found := r.byID[device]
	switch {
	case !found || d.JT808 == nil:
		return "", false
	case d.fleet != nil:
		return d.fleet.JT808AuthCode(d.ID), true
	case d.JT808.AuthCode != "":
		return d.JT808.AuthCode, true
	}
	return "", false
}

// AuthenticateJT808 reports whether code is the JT/T 808 authentication
// code of device, in constant time.
func (r *Registry) AuthenticateJT808(device, code string) bool {
	d, found := r.byID[device]
	if !found || d.JT808 == nil {
		return false
	}
	if d.JT808.AuthCodeHash != "" {
		return VerifySecret(d.JT808.AuthCodeHash, code)
	}
	want, _ := r.JT808AuthCode(device)
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1
}

// JT808Profiles returns the profile names JT/T 808 terminals of the
// registry use ("" for the default), so that the service can check each is
// configured.
func (r *Registry) JT808Profiles() map[string][]string {
	out := map[string][]string{}
	seen := map[*Fleet]bool{}
	for _, d := range r.byPhone {
		if d.fleet != nil {
			if seen[d.fleet] {
				continue
			}
			seen[d.fleet] = true
			out[d.JT808.Profile] = append(out[d.JT808.Profile], "fleet "+d.fleet.Prefix)
			continue
		}
		out[d.JT808.Profile] = append(out[d.JT808.Profile], d.ID)
	}
	return out
}
