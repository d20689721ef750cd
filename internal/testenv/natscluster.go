package testenv

import (
	"errors"
	"fmt"
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
	"testing"
	"time"
)

// NATSServerInstallHint is the command that installs the nats-server the
// cluster tests run (the Makefile puts it next to influxd).
const NATSServerInstallHint = "make nats-server   (GOBIN=~/.cache/urbanwatch/bin go install github.com/nats-io/nats-server/v2@v2.15.3)"

// NATSServerPath returns the nats-server binary: $URBANWATCH_NATS_SERVER if
// set, else nats-server in the urbanwatch cache bin directory (where `make
// nats-server` installs it), else on PATH. If there is none, the test is
// skipped (or fails, see RequireEnv).
func NATSServerPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("URBANWATCH_NATS_SERVER"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	p := filepath.Join(cache, "urbanwatch", "bin", "nats-server")
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p
	}
	p, err := exec.LookPath("nats-server")
	if err == nil {
		return p
	}
	if errors.Is(err, exec.ErrNotFound) {
		err = fmt.Errorf("%w: nats-server", fs.ErrNotExist)
	}
	missing(t, "nats-server (NATS 2.15.3)", NATSServerInstallHint, err)
	return ""
}

// NATSCluster is a cluster of nats-server processes with JetStream on
// loopback, each with its data in the test's temporary directory. Nodes
// can be killed with SIGKILL and started again on the same ports and data.
type NATSCluster struct {
	t     testing.TB
	bin   string
	nodes []*natsNode
}

type natsNode struct {
	name     string
	conf     string
	client   int
	cluster  int
	http     int
	mqtt     int
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	out      *SyncBuffer
	restarts int
}

// StartNATSCluster starts n nats-server nodes clustered with each other
// (routes on loopback), JetStream on (file storage in t.TempDir()), an MQTT
// listener on each, and waits until every node reports itself healthy with
// a JetStream meta leader. The nodes are killed when the test ends; their
// logs go to the test log if the test failed.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	c := &NATSCluster{t: t, bin: NATSServerPath(t)}
	dir := t.TempDir()
	// FreePort closes its listener, so the kernel may hand the same port
	// out twice; keep the cluster's 4n ports distinct.
	used := map[int]bool{}
	port := func() int {
		for {
			if p := FreePort(t); !used[p] {
				used[p] = true
				return p
			}
		}
	}
	for i := range n {
		c.nodes = append(c.nodes, &natsNode{
			name:    fmt.Sprintf("uw-n%d", i+1),
			client:  port(),
			cluster: port(),
			http:    port(),
			mqtt:    port(),
		})
	}
	var routes []string
	for _, nd := range c.nodes {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", nd.cluster))
	}
	for _, nd := range c.nodes {
		var b strings.Builder
		fmt.Fprintf(&b, "server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n", nd.name, nd.client, nd.http)
		fmt.Fprintf(&b, "jetstream { store_dir: %q }\n", filepath.Join(dir, nd.name))
		fmt.Fprintf(&b, "mqtt { listen: 127.0.0.1:%d }\n", nd.mqtt)
		fmt.Fprintf(&b, "cluster {\n  name: uw\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", nd.cluster, strings.Join(routes, ", "))
		nd.conf = filepath.Join(dir, nd.name+".conf")
		if err := os.WriteFile(nd.conf, []byte(b.String()), 0o600); err != nil {
			t.Fatalf("testenv: write nats config: %v", err)
		}
	}
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Kill(i)
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				t.Logf("%s output:\n%s", nd.name, nd.out.String())
			}
		}
	})
	c.WaitHealthy()
	return c
}

func (c *NATSCluster) start(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.out == nil {
		nd.out = &SyncBuffer{}
	} else {
		fmt.Fprintf(nd.out, "---- restart %d ----\n", nd.restarts)
	}
	cmd := exec.Command(c.bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = nd.out, nd.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("testenv: start %s: %v", nd.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	nd.cmd, nd.done = cmd, done
}

// URLs returns the client URLs of every node, comma-separated, for
// nats.Connect (which fails over between them).
func (c *NATSCluster) URLs() string {
	var u []string
	for _, nd := range c.nodes {
		u = append(u, c.url(nd))
	}
	return strings.Join(u, ",")
}

// URL returns node i's client URL.
func (c *NATSCluster) URL(i int) string { return c.url(c.nodes[i]) }

func (c *NATSCluster) url(nd *natsNode) string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(nd.client))
}

// MQTTAddr returns node i's MQTT listener address "127.0.0.1:port".
func (c *NATSCluster) MQTTAddr(i int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.nodes[i].mqtt))
}

// Index returns the index of the node whose server_name is name, or -1.
func (c *NATSCluster) Index(name string) int {
	for i, nd := range c.nodes {
		if nd.name == name {
			return i
		}
	}
	return -1
}

// Size is the number of nodes.
func (c *NATSCluster) Size() int { return len(c.nodes) }

// Kill sends SIGKILL to node i (kill -9: no flush, no goodbye to the
// cluster) and waits for it to exit. Killing a dead node does nothing.
func (c *NATSCluster) Kill(i int) {
	nd := c.nodes[i]
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.cmd = nil
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Restart starts a killed node i again on its ports and data directory and
// waits until the cluster is healthy.
func (c *NATSCluster) Restart(i int) {
	c.t.Helper()
	c.nodes[i].restarts++
	c.start(i)
	c.WaitHealthy()
}

// WaitHealthy waits until every running node answers /healthz with 200
// (JetStream enabled and current with the meta leader).
func (c *NATSCluster) WaitHealthy() {
	c.t.Helper()
	client := &http.Client{Timeout: time.Second}
	WaitFor(c.t, 30*time.Second, func() bool {
		for _, nd := range c.nodes {
			nd.mu.Lock()
			running, done := nd.cmd != nil, nd.done
			nd.mu.Unlock()
			if !running {
				continue
			}
			select {
			case <-done:
				c.t.Fatalf("testenv: %s exited during start-up:\n%s", nd.name, nd.out.String())
			default:
			}
			resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.http))
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	}, "nats cluster did not become healthy")
}
