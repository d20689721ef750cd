package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/urbanwatch/urbanwatch/internal/testenv"
)

// promtool finds promtool where `make promtool` installs it (Prometheus 3),
// or on PATH (Debian's prometheus package, 2.42, which .ci/run installs).
func promtool(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "urbanwatch", "bin", "promtool")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool", "apt-get install -y prometheus (or make promtool)", err)
	}
	return p
}

// TestPrometheusRules runs promtool check rules over deploy/prometheus/rules.yml
// and promtool test rules over its unit tests (rules_test.yml: the spool,
// outbox, InfluxDB, fleet and reload alerts fire when they should and not
// before), and promtool check config over the compose Prometheus
// configuration (its rule_files glob names the container's path and matches
// nothing here).
func TestPrometheusRules(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "rules.yml"},
		{"test", "rules", "rules_test.yml"},
		{"check", "config", "../compose/prometheus/prometheus.yml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		} else {
			t.Logf("promtool %v:\n%s", args, out)
		}
	}
}
