package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// InfluxdPackage is what `go install` builds: InfluxDB 1.8.10's server.
const InfluxdPackage = "github.com/influxdata/influxdb/cmd/influxd@v1.8.10"

// InstallHint is the shell command that installs influxd where StartManaged
// looks for it by default.
const InstallHint = "GOBIN=${XDG_CACHE_HOME:-$HOME/.cache}/urbanwatch/bin go install " + InfluxdPackage

// ManagedOptions configures StartManaged. Zero values take the documented
// defaults.
type ManagedOptions struct {
	// BinDir holds influxd, or receives it when Install is set. Default
	// DefaultBinDir().
	BinDir string
	// DataDir holds the generated config and influxd's meta, data and wal
	// folders. Default $XDG_DATA_HOME or ~/.local/share, + "/urbanwatch/influxdb".
	DataDir string
	// Database is created (idempotently) once influxd answers; empty creates
	// none.
	Database string
	// Install builds influxd into BinDir with `go install` (about a minute,
	// needs the Go toolchain and network) when it is missing. Without it a
	// missing influxd is an error wrapping fs.ErrNotExist.
	Install bool
	// HTTPPort and RPCPort are the loopback ports for the HTTP API and the
	// backup/restore RPC service; 0 picks free ones.
	HTTPPort, RPCPort int
	// StartTimeout bounds the wait for /ping after each start. Default 60s.
	StartTimeout time.Duration
	// Logger receives StartManaged's own logs.
	Logger zerolog.Logger
	// Stdout receives influxd's log output. Default: discarded (its last lines
	// are still quoted in start-up errors).
	Stdout io.Writer
}

// Managed is an influxd process started by StartManaged, bound to 127.0.0.1.
// Its methods are safe for concurrent use.
type Managed struct {
	opts     ManagedOptions
	bin      string
	conf     string
	httpAddr string
	log      zerolog.Logger

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited; nil when not running
	tail *tailBuffer
}

// DefaultBinDir returns where urbanwatch keeps its influxd build:
// $XDG_CACHE_HOME (or ~/.cache) + "/urbanwatch/bin".
func DefaultBinDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("influx: locate cache folder: %w", err)
	}
	return filepath.Join(dir, "urbanwatch", "bin"), nil
}

// InfluxdBinary returns the path of influxd in binDir (DefaultBinDir() when
// empty), or an error wrapping fs.ErrNotExist when it is not installed there.
func InfluxdBinary(binDir string) (string, error) {
	if binDir == "" {
		var err error
		if binDir, err = DefaultBinDir(); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(binDir, "influxd")
	st, err := os.Stat(bin)
	if err != nil {
		return bin, fmt.Errorf("influx: influxd not installed in %s (install: %s): %w", binDir, InstallHint, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return bin, fmt.Errorf("influx: %s is not an executable file: %w", bin, fs.ErrNotExist)
	}
	return bin, nil
}

// StartManaged starts influxd with a generated configuration (both ports on
// 127.0.0.1, flux-enabled, reporting disabled, auth off, HTTP and query logs
// off, no _internal monitoring database), waits until /ping answers 204 and
// creates o.Database. ctx bounds the installation and the start-up only; the
// process runs until Stop or Kill. When the Go program exits without Stop,
// influxd is sent SIGTERM on Linux (parent-death signal).
func StartManaged(ctx context.Context, o ManagedOptions) (*Managed, error) {
	if o.BinDir == "" {
		dir, err := DefaultBinDir()
		if err != nil {
			return nil, err
		}
		o.BinDir = dir
	}
	if o.DataDir == "" {
		dir, err := defaultDataDir()
		if err != nil {
			return nil, err
		}
		o.DataDir = dir
	}
	setDefault(&o.StartTimeout, 60*time.Second)
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	m := &Managed{opts: o, log: o.Logger.With().Str("component", "influxd").Logger()}

	bin, err := InfluxdBinary(o.BinDir)
	if err != nil && errors.Is(err, fs.ErrNotExist) && o.Install {
		if err = install(ctx, o.BinDir, m.log); err == nil {
			bin, err = InfluxdBinary(o.BinDir)
		}
	}
	if err != nil {
		return nil, err
	}
	m.bin = bin

	httpPort, rpcPort := o.HTTPPort, o.RPCPort
	for _, p := range []*int{&httpPort, &rpcPort} {
		if *p == 0 {
			if *p, err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	m.httpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	rpcAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rpcPort))

	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("influx: create data folder: %w", err)
	}
	m.conf = filepath.Join(o.DataDir, "influxdb.conf")
	if err := os.WriteFile(m.conf, []byte(managedConfig(o.DataDir, m.httpAddr, rpcAddr)), 0o644); err != nil {
		return nil, fmt.Errorf("influx: write influxd config: %w", err)
	}
	if err := m.start(ctx); err != nil {
		return nil, err
	}
	if o.Database != "" {
		if err := EnsureDatabase(ctx, m.URL(), "", "", o.Database); err != nil {
			_ = m.Stop()
			return nil, err
		}
	}
	return m, nil
}

// URL returns influxd's HTTP base URL, http://127.0.0.1:<port>. It stays the
// same across Restart.
func (m *Managed) URL() string { return "http://" + m.httpAddr }

// Database returns the database StartManaged created.
func (m *Managed) Database() string { return m.opts.Database }

// DataDir returns the folder holding influxd's config and data.
func (m *Managed) DataDir() string { return m.opts.DataDir }

// Stop shuts influxd down gracefully: SIGTERM, then SIGKILL if it has not
// exited after 15s. Stopping a stopped process is a no-op.
func (m *Managed) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stop(15 * time.Second)
}

// Kill ends influxd abruptly (SIGKILL), as a crash or outage would; data
// acknowledged by InfluxDB survives through its WAL. Restart brings it back.
// Killing a stopped process is a no-op.
func (m *Managed) Kill() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stop(0)
}

// Restart stops influxd if it runs (gracefully, as Stop) and starts it again
// on the same ports and data, returning once /ping answers.
func (m *Managed) Restart(ctx context.Context) error {
	m.mu.Lock()
	err := m.stop(15 * time.Second)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	return m.start(ctx)
}

// start runs influxd and waits for /ping.
func (m *Managed) start(ctx context.Context) error {
	m.mu.Lock()
	if m.done != nil {
		m.mu.Unlock()
		return errors.New("influx: influxd already running")
	}
	tail := &tailBuffer{max: 8 << 10}
	cmd := exec.Command(m.bin, "run", "-config", m.conf)
	cmd.Stdout = io.MultiWriter(m.opts.Stdout, tail)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("influx: start influxd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	m.cmd, m.done, m.tail = cmd, done, tail
	m.mu.Unlock()
	m.log.Info().Int("pid", cmd.Process.Pid).Str("url", m.URL()).Str("data", m.opts.DataDir).Msg("influxd started")

	ctx, cancel := context.WithTimeout(ctx, m.opts.StartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if m.ping(ctx) {
			return nil
		}
		select {
		case <-done:
			m.mu.Lock()
			m.cmd, m.done = nil, nil
			m.mu.Unlock()
			return fmt.Errorf("influx: influxd exited during start-up (%s); its last output:\n%s", cmd.ProcessState, tail)
		case <-ctx.Done():
			_ = m.Kill()
			return fmt.Errorf("influx: influxd did not answer /ping at %s: %w; its last output:\n%s", m.URL(), ctx.Err(), tail)
		case <-tick.C:
		}
	}
}

func (m *Managed) ping(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+"/ping", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusNoContent
}

// stop signals the process (SIGTERM with a grace period, or SIGKILL when
// grace is 0) and waits for it. m.mu is held.
func (m *Managed) stop(grace time.Duration) error {
	if m.done == nil {
		return nil
	}
	cmd, done := m.cmd, m.done
	m.cmd, m.done = nil, nil
	if grace > 0 {
		if err := cmd.Process.Signal(syscall.SIGTERM); err == nil {
			select {
			case <-done:
				m.log.Info().Int("pid", cmd.Process.Pid).Msg("influxd stopped")
				return nil
			case <-time.After(grace):
				m.log.Warn().Int("pid", cmd.Process.Pid).Dur("grace", grace).Msg("influxd ignored SIGTERM; killing it")
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("influx: kill influxd: %w", err)
	}
	<-done
	m.log.Info().Int("pid", cmd.Process.Pid).Msg("influxd killed")
	return nil
}

// install builds influxd into binDir with `go install`.
func install(ctx context.Context, binDir string, log zerolog.Logger) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("influx: influxd is missing and the Go toolchain to build it is not on PATH (or run: %s): %w", InstallHint, err)
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("influx: create %s: %w", binDir, err)
	}
	log.Warn().Str("bin_dir", binDir).Str("package", InfluxdPackage).
		Msg("influxd not found: building InfluxDB 1.8.10 once with go install (takes about a minute)")
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", InfluxdPackage)
	cmd.Dir = binDir // outside any module: go install pkg@version needs none
	cmd.Env = append(os.Environ(), "GOBIN="+binDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("influx: go install %s: %w\n%s", InfluxdPackage, err, lastBytes(out, 4<<10))
	}
	log.Info().Dur("took", time.Since(t0)).Msg("influxd installed")
	return nil
}

// managedConfig is influxd's configuration for a managed instance.
func managedConfig(dataDir, httpAddr, rpcAddr string) string {
	q := func(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by urbanwatch (storage/influx.StartManaged); rewritten on every start.
reporting-disabled = true
bind-address = %s

[meta]
  dir = %s
  logging-enabled = false

[data]
  dir = %s
  wal-dir = %s
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = %s
  auth-enabled = false
  log-enabled = false
  flux-enabled = true
  pprof-enabled = false

[logging]
  suppress-logo = true
`, q(rpcAddr), q(filepath.Join(dataDir, "meta")), q(filepath.Join(dataDir, "data")),
		q(filepath.Join(dataDir, "wal")), q(httpAddr))
	return b.String()
}

func defaultDataDir() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("influx: locate data folder: %w", err)
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "urbanwatch", "influxdb"), nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("influx: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(lastBytes(t.b, t.max))
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}
