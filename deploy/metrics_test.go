package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/urbanwatch/urbanwatch/app"
	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/simulators"
)

var metricRE = regexp.MustCompile(`\burbanwatch_[a-z0-9_]+`)

// usedMetrics returns the urbanwatch_* names the Grafana dashboards'
// expressions and the Prometheus rules name, each with where it is used.
func usedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	add := func(where, expr string) {
		for _, m := range metricRE.FindAllString(expr, -1) {
			used[m] = append(used[m], where)
		}
	}
	dashboards, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(dashboards) == 0 {
		t.Fatal("no dashboards")
	}
	for _, f := range dashboards {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
			Templating struct {
				List []struct {
					Definition string `json:"definition"`
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				add(filepath.Base(f)+": "+p.Title, tg.Expr)
			}
		}
		for _, v := range d.Templating.List {
			add(filepath.Base(f)+": variable", v.Definition)
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	b, err := os.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			add("rules.yml: "+r.Alert, r.Expr)
		}
	}
	return used
}

// scrapedMetrics starts urbanwatch in-process with every part that
// registers metrics (embedded broker, JT/T 808 gateway, rules, alerting,
// console) against an InfluxDB stand-in, and returns the metric families
// its /metrics lists.
func scrapedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()
	reg, err := config.LoadRegistry("demo/registry.yaml")
	if err != nil {
		t.Fatal(err)
	}
	city := simulators.DemoCity(20, 5, 5, simulators.DemoSeed)
	if err := city.Validate(reg); err != nil {
		t.Fatal(err)
	}
	users := &config.Users{}
	u := config.User{Name: "admin", Role: config.Role("admin")}
	if err := u.SetPassword("metrics-test-password", 4); err != nil {
		t.Fatal(err)
	}
	users.Users = append(users.Users, u)
	if err := users.Save(filepath.Join(dir, "users.yaml")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "urbanwatch.yaml"), []byte(`registry: `+mustAbs(t, "demo/registry.yaml")+`
data_dir: data
http: {listen: "127.0.0.1:0"}
mqtt: {listen: "127.0.0.1:0"}
jt808: {listen: "127.0.0.1:0"}
influx: {url: "`+sink.URL+`"}
console: {users: users.yaml}
`), 0o600)
	cfg, err := config.Load(filepath.Join(dir, "urbanwatch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan *app.App, 1)
	a, err := app.New(app.Options{Config: cfg, Registry: reg, City: city,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Ready: func(a *app.App) { ready <- a }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app: %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("app stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("app not ready in 30s")
	}
	resp, err := http.Get("http://" + a.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	have := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "#" && (f[1] == "TYPE" || f[1] == "HELP") {
			have[f[2]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return have
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sourceMetrics returns the metric names urbanwatch's Go source registers:
// the Name (with Namespace and Subsystem) of every prometheus *Opts literal
// and the first argument of every NewDesc call, string constants resolved.
func sourceMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && d.Name() != "..") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		consts := map[string]string{}
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i], nil); ok {
							consts[id.Name] = s
						}
					}
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CompositeLit:
				sel, ok := x.Type.(*ast.SelectorExpr)
				if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
					return true
				}
				var parts [3]string
				for _, e := range x.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					key, _ := kv.Key.(*ast.Ident)
					s, _ := stringLit(kv.Value, consts)
					switch key.Name {
					case "Namespace":
						parts[0] = s
					case "Subsystem":
						parts[1] = s
					case "Name":
						parts[2] = s
					}
				}
				if parts[2] != "" {
					var nonEmpty []string
					for _, p := range parts {
						if p != "" {
							nonEmpty = append(nonEmpty, p)
						}
					}
					names[strings.Join(nonEmpty, "_")] = true
				}
			case *ast.CallExpr:
				if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewDesc" && len(x.Args) > 0 {
					if s, ok := stringLit(x.Args[0], consts); ok {
						names[s] = true
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func stringLit(e ast.Expr, consts map[string]string) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			s, err := strconv.Unquote(x.Value)
			return s, err == nil
		}
	case *ast.Ident:
		s, ok := consts[x.Name]
		return s, ok
	}
	return "", false
}

// TestMetricsExist checks that every urbanwatch_* metric a dashboard panel
// or an alerting rule names is one urbanwatch exports.
//
// Two sources, because neither alone is complete: a labelled (*Vec) metric
// appears on /metrics only once its first label set is used, so a scrape
// of a fresh app misses e.g. urbanwatch_notifications_total until an SMS
// has been sent; and names built at run time are invisible to a reading of
// the source. So the test scrapes a real app started in-process (with the
// broker, JT/T 808 gateway, rules, alerting and console, which register
// their collectors when they are built) and adds the names the Go source
// registers (prometheus *Opts literals and NewDesc). A histogram's
// _bucket, _sum and _count series count as the histogram. It fails with
// the list of names found in neither.
func TestMetricsExist(t *testing.T) {
	scraped := scrapedMetrics(t)
	source := sourceMetrics(t)
	if len(scraped) < 20 || len(source) < 40 {
		t.Fatalf("only %d metrics scraped and %d found in the source: the method is broken", len(scraped), len(source))
	}
	var unknown []string
	used := usedMetrics(t)
	for name, where := range used {
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok && (scraped[b] || source[b]) {
				base = b
			}
		}
		if !scraped[base] && !source[base] {
			unknown = append(unknown, name+" (used in "+strings.Join(where, "; ")+")")
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Fatalf("%d metric names that urbanwatch does not export:\n  %s", len(unknown), strings.Join(unknown, "\n  "))
	}
	t.Logf("%d metric names used by dashboards and rules; %d scraped from a running app, %d registered in the source",
		len(used), len(scraped), len(source))
}
