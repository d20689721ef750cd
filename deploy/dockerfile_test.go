package deploy_test

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one FROM and what follows it.
type stage struct {
	from, name string
	ins        []instruction
}

func parseDockerfile(t *testing.T, path string) (args map[string]string, stages []*stage) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args = map[string]string{}
	var cur strings.Builder
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" && cur.Len() == 0 {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	for _, l := range lines {
		cmd, rest, _ := strings.Cut(l, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(rest)}
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			s := &stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(stages) == 0:
			t.Fatalf("%s before the first FROM", in.cmd)
		default:
			s := stages[len(stages)-1]
			s.ins = append(s.ins, in)
		}
	}
	return args, stages
}

func (s *stage) all(cmd string) []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// TestDockerfile checks deploy/docker/Dockerfile: a Go builder stage on the
// go.mod's Go version building a static ./cmd/urbanwatch, and a runtime
// stage that copies that binary, runs it as a non-root user with /data as a
// volume, exposes the device and HTTP ports and checks /readyz with the
// binary's own healthcheck command. And .dockerignore keeps what the build
// needs.
func TestDockerfile(t *testing.T) {
	args, stages := parseDockerfile(t, "docker/Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a builder and a runtime", len(stages))
	}
	build, run := stages[0], stages[len(stages)-1]

	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	from := strings.ReplaceAll(build.from, "${GO_VERSION}", args["GO_VERSION"])
	if goVersion == nil || from != "golang:"+string(goVersion[1]) {
		t.Errorf("builder FROM %s (GO_VERSION=%s), want golang:%s as go.mod says", build.from, args["GO_VERSION"], goVersion[1])
	}
	var built string
	for _, r := range build.all("RUN") {
		if strings.Contains(r, "go build") {
			built = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/urbanwatch", "-o /out/urbanwatch"} {
		if !strings.Contains(built, want) {
			t.Errorf("the build RUN %q lacks %q", built, want)
		}
	}
	copied := false
	for _, c := range run.all("COPY") {
		if strings.Contains(c, "--from="+build.name) && strings.Contains(c, "/out/urbanwatch ") {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the runtime stage does not copy /out/urbanwatch from %s", build.name)
	}
	users := run.all("USER")
	if len(users) == 0 {
		t.Fatal("no USER: the container would run as root")
	}
	if u, _, _ := strings.Cut(users[len(users)-1], ":"); u == "root" || u == "0" {
		t.Errorf("USER %s is root", users[len(users)-1])
	}
	hc := run.all("HEALTHCHECK")
	if len(hc) != 1 || !strings.Contains(hc[0], `"healthcheck"`) || !strings.Contains(hc[0], "/readyz") {
		t.Errorf("HEALTHCHECK %q: want urbanwatch healthcheck on /readyz", hc)
	}
	main, _ := os.ReadFile("../cmd/urbanwatch/main.go")
	if !strings.Contains(string(main), `case "healthcheck":`) {
		t.Error("urbanwatch has no healthcheck command")
	}
	if v := run.all("VOLUME"); len(v) != 1 || !strings.Contains(v[0], `"/data"`) {
		t.Errorf("VOLUME %q, want /data", v)
	}
	var exposed []string
	for _, e := range run.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(e)...)
	}
	for _, p := range []string{"1883", "8883", "8080", "7611"} {
		if !slices.Contains(exposed, p) {
			t.Errorf("port %s not exposed", p)
		}
	}
	if e := run.all("ENTRYPOINT"); len(e) != 1 || !strings.Contains(e[0], "urbanwatch") {
		t.Errorf("ENTRYPOINT %q", e)
	}

	// .dockerignore must not leave out what go build needs.
	ig, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ig), "\n") {
		p := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "/"), "/")
		if p == "" || strings.HasPrefix(p, "#") || strings.HasPrefix(p, "!") {
			continue
		}
		for _, need := range []string{"go.mod", "go.sum", "cmd", "app", "web", "web/static", "config", "ingest", "storage", "telemetry"} {
			if p == need || p == "*" || p == "**" {
				t.Errorf(".dockerignore leaves out %s, which the build needs", need)
			}
		}
	}
}

// TestSystemdUnit checks the hardening of deploy/systemd/urbanwatch.service.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/urbanwatch.service")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("bad line %q", line)
			}
			set[section+k] = append(set[section+k], v)
		}
	}
	for k, want := range map[string]string{
		"[Service]NoNewPrivileges": "yes", "[Service]ProtectSystem": "strict", "[Service]ProtectHome": "yes",
		"[Service]PrivateTmp": "yes", "[Service]CapabilityBoundingSet": "", "[Service]Restart": "on-failure",
		"[Service]ReadWritePaths": "/var/lib/urbanwatch", "[Service]LimitNOFILE": "1048576",
		"[Service]ExecReload": "/bin/kill -HUP $MAINPID", "[Service]User": "urbanwatch",
		"[Install]WantedBy": "multi-user.target",
	} {
		if v := set[k]; len(v) != 1 || v[0] != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if e := set["[Service]ExecStart"]; len(e) != 1 || !strings.Contains(e[0], "urbanwatch serve -config") {
		t.Errorf("ExecStart %q", e)
	}
}
