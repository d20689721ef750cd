package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
)

// TestConnectNATSWithLoginAndTLS runs a nats-server that requires a user and
// password over TLS with a certificate of the test's own CA, and connects as
// a cluster node would: with the right password and CA it connects; with a
// wrong password, or without the CA, it does not, and says why in the log.
func TestConnectNATSWithLoginAndTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestPKI(t, dir)
	port := testenv.FreePort(t)
	conf := filepath.Join(dir, "nats.conf")
	os.WriteFile(conf, fmt.Appendf(nil, "listen: 127.0.0.1:%d\nauthorization { user: uw, password: \"s3cret-pass\" }\n"+
		"tls { cert_file: %q, key_file: %q, timeout: 2 }\n", port, certFile, keyFile), 0o600)
	srv := exec.Command(testenv.NATSServerPath(t), "-c", conf)
	var out testenv.SyncBuffer
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		if t.Failed() {
			t.Logf("nats-server:\n%s", out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, "nats-server listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	pwFile := filepath.Join(dir, "password")
	os.WriteFile(pwFile, []byte("s3cret-pass\n"), 0o600)

	for _, c := range []struct {
		name, password string
		ca             bool
		connects       bool
		logged         string // what the log must say when it does not connect
	}{
		{"right password and CA", "s3cret-pass", true, true, ""},
		{"wrong password", "guess", true, false, "authorization violation"},
		{"no CA", "s3cret-pass", false, false, "certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Registry = "registry.yaml"
			cfg.Influx.URL = "http://127.0.0.1:1"
			cfg.Cluster.NATS = []string{"nats://" + addr}
			cfg.Cluster.Node = "n1"
			cfg.Cluster.User = "uw"
			os.WriteFile(pwFile, []byte(c.password+"\n"), 0o600)
			cfg.Cluster.PasswordFile = pwFile
			if c.ca {
				cfg.Cluster.TLSCAFile = caFile
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			var logs testenv.SyncBuffer
			nc, err := connectNATS(cfg.Cluster, zerolog.New(&logs))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if c.connects {
				waitFor(t, "connected", nc.IsConnected)
				if !nc.TLSRequired() {
					t.Error("connected without TLS")
				}
				return
			}
			waitFor(t, "the log to say "+c.logged, func() bool {
				return strings.Contains(strings.ToLower(logs.String()), c.logged)
			})
			if nc.IsConnected() {
				t.Fatal("connected anyway")
			}
		})
	}
}

// writeTestPKI writes a CA and a server certificate for 127.0.0.1 signed by
// it, and returns the CA's, the certificate's and the key's files.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "urbanwatch test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}
