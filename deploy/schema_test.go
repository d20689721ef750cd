package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/urbanwatch/urbanwatch/config"
)

// yamlDocs decodes every document of a YAML file into JSON values (maps,
// slices, float64, string, bool, nil), as a JSON-schema validator wants.
func yamlDocs(t *testing.T, path string) []any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if v == nil {
			continue
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	return docs
}

func loadJSON(t *testing.T, path string) any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// dig walks maps and slices by keys (string) and indexes (int).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := dig(v, path...).(string)
	return s
}

// TestComposeFile validates deploy/compose/docker-compose.yaml against the
// Compose Specification's schema and checks what urbanwatch needs of it.
func TestComposeFile(t *testing.T) {
	c := jsonschema.NewCompiler()
	const url = "https://github.com/compose-spec/compose-spec/schema/compose-spec.json"
	if err := c.AddResource(url, loadJSON(t, "testdata/schemas/compose-spec.json")); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	docs := yamlDocs(t, "compose/docker-compose.yaml")
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	doc := docs[0]
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("docker-compose.yaml against the compose schema:\n%v", err)
	}
	if err := sch.Validate(map[string]any{"services": map[string]any{"x": map[string]any{"image": "x", "restrat": "always"}}}); err == nil {
		t.Error("a service with a misspelt key passed the compose schema")
	}

	services, _ := dig(doc, "services").(map[string]any)
	for _, name := range []string{"urbanwatch", "influxdb", "prometheus", "grafana", "mosquitto"} {
		if services[name] == nil {
			t.Errorf("service %s missing", name)
		}
	}
	if got := str(doc, "services", "urbanwatch", "build", "dockerfile"); got != "deploy/docker/Dockerfile" {
		t.Errorf("urbanwatch builds %q, want deploy/docker/Dockerfile", got)
	}
	if img := str(doc, "services", "influxdb", "image"); !strings.HasPrefix(img, "influxdb:1.8") {
		t.Errorf("influxdb image %q, want InfluxDB 1.8", img)
	}
	if str(doc, "services", "influxdb", "environment", "INFLUXDB_HTTP_FLUX_ENABLED") != "true" {
		t.Error("InfluxDB without flux")
	}
	if p, _ := dig(doc, "services", "mosquitto", "profiles").([]any); !slices.Contains(p, any("external-broker")) {
		t.Errorf("mosquitto profiles %v, want external-broker", p)
	}
	if str(doc, "services", "urbanwatch", "depends_on", "influxdb", "condition") != "service_healthy" {
		t.Error("urbanwatch should wait for a healthy InfluxDB")
	}
	// Every file a service mounts from the repository exists.
	for name, svc := range services {
		vols, _ := dig(svc, "volumes").([]any)
		for _, v := range vols {
			s, _ := v.(string)
			src, _, _ := strings.Cut(s, ":")
			if !strings.HasPrefix(src, ".") {
				continue // a named volume
			}
			if strings.Contains(src, "urbanwatch.passwd") {
				continue // written by the operator (mosquitto_passwd)
			}
			if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}
	// urbanwatch's configuration loads as the container sees it.
	loadMounted(t, "compose/urbanwatch/urbanwatch.yaml", map[string]string{"/run/secrets/": ""})
}

// loadMounted loads a urbanwatch.yaml meant for a container with config.Load:
// it is copied next to the demo's registry, city and alerting files, and the
// secret files it names (their folders rewritten by secretDirs) are made.
func loadMounted(t *testing.T, path string, secretDirs map[string]string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return loadConfigText(t, dir, string(b), secretDirs)
}

func loadConfigText(t *testing.T, dir, text string, secretDirs map[string]string) *config.Config {
	t.Helper()
	for from := range secretDirs {
		to := filepath.Join(dir, "secrets", strings.ReplaceAll(strings.Trim(from, "/"), "/", "_")) + "/"
		text = strings.ReplaceAll(text, from, to)
		secretDirs[from] = to
	}
	for _, f := range []string{"registry.yaml", "city.yaml", "alerting.yaml", "users.yaml", "sites.geojson", "routes.geojson", "districts.geojson"} {
		b, err := os.ReadFile(filepath.Join("demo", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	// Make every secret file the text names.
	for _, line := range strings.Split(text, "\n") {
		for _, to := range secretDirs {
			if i := strings.Index(line, to); i >= 0 {
				p := strings.Fields(line[i:])[0]
				os.MkdirAll(filepath.Dir(p), 0o700)
				os.WriteFile(p, []byte("user:secret\n"), 0o600)
			}
		}
	}
	p := filepath.Join(dir, "urbanwatch.yaml")
	os.WriteFile(p, []byte(text), 0o600)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	if cfg.Influx.URL == "" {
		t.Error("influx.url is empty: the managed InfluxDB needs the Go toolchain, which a container lacks")
	}
	if !strings.HasPrefix(cfg.HTTP.Listen, "0.0.0.0:") {
		t.Errorf("http.listen %s: Prometheus and the probes reach it from outside the container", cfg.HTTP.Listen)
	}
	if cfg.DataDir != "/data" {
		t.Errorf("data_dir %s, want the volume /data", cfg.DataDir)
	}
	if cfg.Log.Format != "json" || !cfg.Console.SecureCookies {
		t.Errorf("log.format %s, console.secure_cookies %v: want json and true in production", cfg.Log.Format, cfg.Console.SecureCookies)
	}
	return cfg
}

var kubeSwagger = flag.String("kube-swagger", "", "refresh testdata/schemas/kubernetes-1.27-definitions.json from this Kubernetes swagger.json")

const kubeSchema = "testdata/schemas/kubernetes-1.27-definitions.json"

// kubeKinds are the kinds deploy/k8s may use, by apiVersion and kind.
var kubeKinds = []string{
	"io.k8s.api.apps.v1.StatefulSet", "io.k8s.api.core.v1.Service", "io.k8s.api.core.v1.ConfigMap",
	"io.k8s.api.core.v1.Secret", "io.k8s.api.core.v1.Namespace", "io.k8s.api.policy.v1.PodDisruptionBudget",
}

// TestRefreshKubernetesSchema writes the vendored Kubernetes definitions:
// those reachable from kubeKinds, verbatim. It runs only with -kube-swagger.
func TestRefreshKubernetesSchema(t *testing.T) {
	if *kubeSwagger == "" {
		t.Skip("only with -kube-swagger PATH")
	}
	var doc struct {
		Definitions map[string]json.RawMessage `json:"definitions"`
	}
	b, err := os.ReadFile(*kubeSwagger)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keep := map[string]json.RawMessage{}
	var walk func(name string)
	walk = func(name string) {
		if _, ok := keep[name]; ok {
			return
		}
		def, ok := doc.Definitions[name]
		if !ok {
			t.Fatalf("definition %s missing", name)
		}
		keep[name] = def
		for _, part := range strings.Split(string(def), `"#/definitions/`)[1:] {
			walk(part[:strings.IndexByte(part, '"')])
		}
	}
	for _, k := range kubeKinds {
		walk(k)
	}
	out, err := json.MarshalIndent(map[string]any{"definitions": keep}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kubeSchema, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d definitions", len(keep), len(doc.Definitions))
}

// strictKube applies what yannh/kubernetes-json-schema's "-strict" schemas
// do to the Kubernetes definitions: an object with properties allows no
// others (a misspelt field is an error, as kubectl apply --validate=strict
// makes it), and IntOrString and Quantity accept a number or a string.
func strictKube(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if f, _ := x["format"].(string); f == "int-or-string" {
			return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		}
		for k, e := range x {
			if k == "properties" {
				props, _ := e.(map[string]any)
				for pk, pv := range props {
					props[pk] = strictKube(pv)
				}
				continue
			}
			x[k] = strictKube(e)
		}
		if _, ok := x["properties"]; ok {
			if _, set := x["additionalProperties"]; !set {
				x["additionalProperties"] = false
			}
		}
		return x
	case []any:
		for i := range x {
			x[i] = strictKube(x[i])
		}
	}
	return v
}

// TestKubernetesManifests validates every document in deploy/k8s against
// the Kubernetes 1.27 schema of its kind (made strict) and checks how the
// parts fit together.
func TestKubernetesManifests(t *testing.T) {
	defs := loadJSON(t, kubeSchema)
	d, _ := dig(defs, "definitions").(map[string]any)
	d["io.k8s.apimachinery.pkg.api.resource.Quantity"] = map[string]any{
		"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	strictKube(defs)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	const url = "https://kubernetes.io/schemas/v1.27.0/definitions.json"
	if err := c.AddResource(url, defs); err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*jsonschema.Schema{}
	for _, name := range kubeKinds {
		gvk, _ := dig(d, name, "x-kubernetes-group-version-kind", 0).(map[string]any)
		api := gvk["version"].(string)
		if g := gvk["group"].(string); g != "" {
			api = g + "/" + api
		}
		s, err := c.Compile(url + "#/definitions/" + name)
		if err != nil {
			t.Fatal(err)
		}
		schemas[api+" "+gvk["kind"].(string)] = s
	}

	files, _ := filepath.Glob("k8s/*.yaml")
	objs := map[string]any{} // "Kind/name"
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, doc := range yamlDocs(t, f) {
			key := str(doc, "apiVersion") + " " + str(doc, "kind")
			s := schemas[key]
			if s == nil {
				t.Errorf("%s: %s has no schema here (add it to kubeKinds)", f, key)
				continue
			}
			if err := s.Validate(doc); err != nil {
				t.Errorf("%s: %s %s:\n%v", f, key, str(doc, "metadata", "name"), err)
			}
			objs[str(doc, "kind")+"/"+str(doc, "metadata", "name")] = doc
		}
	}
	var names []string
	for k := range objs {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("validated %s", strings.Join(names, ", "))

	// The kustomization lists every manifest but the example Secret.
	kust := yamlDocs(t, "k8s/kustomization.yaml")[0]
	res, _ := dig(kust, "resources").([]any)
	for _, f := range files {
		b := filepath.Base(f)
		if b != "kustomization.yaml" && b != "secret.example.yaml" && !slices.Contains(res, any(b)) {
			t.Errorf("kustomization.yaml does not list %s", b)
		}
	}

	sts := objs["StatefulSet/urbanwatch"]
	if sts == nil {
		t.Fatal("no StatefulSet urbanwatch")
	}
	spec := dig(sts, "spec", "template", "spec")
	ctr := dig(spec, "containers", 0)
	if fmt.Sprint(dig(sts, "spec", "replicas")) != "1" {
		t.Error("replicas must be 1: the data dir is one process's")
	}
	if str(sts, "spec", "volumeClaimTemplates", 0, "metadata", "name") != "data" {
		t.Error("no volumeClaimTemplate data")
	}
	mounts := map[string]string{}
	for _, m := range dig(ctr, "volumeMounts").([]any) {
		mounts[str(m, "mountPath")] = str(m, "name")
	}
	if mounts["/data"] != "data" {
		t.Errorf("/data mounts %q, want the claim data", mounts["/data"])
	}
	if str(ctr, "livenessProbe", "httpGet", "path") != "/healthz" || str(ctr, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Error("liveness must ask /healthz and readiness /readyz")
	}
	for _, r := range []string{"requests", "limits"} {
		for _, k := range []string{"cpu", "memory"} {
			if dig(ctr, "resources", r, k) == nil {
				t.Errorf("resources.%s.%s unset", r, k)
			}
		}
	}
	if dig(spec, "securityContext", "runAsNonRoot") != true || dig(ctr, "securityContext", "readOnlyRootFilesystem") != true ||
		dig(ctr, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("want runAsNonRoot, readOnlyRootFilesystem and no privilege escalation")
	}
	ports := map[string]bool{}
	for _, p := range dig(ctr, "ports").([]any) {
		ports[str(p, "name")] = true
	}
	labels := dig(sts, "spec", "template", "metadata", "labels").(map[string]any)
	matches := func(sel any) bool {
		m, _ := sel.(map[string]any)
		for k, v := range m {
			if labels[k] != v {
				return false
			}
		}
		return len(m) > 0
	}
	if !matches(dig(sts, "spec", "selector", "matchLabels")) {
		t.Error("the StatefulSet's selector does not match its pods")
	}
	if objs["Service/"+str(sts, "spec", "serviceName")] == nil || dig(objs["Service/"+str(sts, "spec", "serviceName")], "spec", "clusterIP") != "None" {
		t.Error("serviceName must name a headless Service")
	}
	for k, o := range objs {
		switch {
		case strings.HasPrefix(k, "Service/"):
			if !matches(dig(o, "spec", "selector")) {
				t.Errorf("%s selects no urbanwatch pod", k)
			}
			for _, p := range dig(o, "spec", "ports").([]any) {
				if tp := str(p, "targetPort"); tp != "" && !ports[tp] {
					t.Errorf("%s: targetPort %s is no container port", k, tp)
				}
			}
		case strings.HasPrefix(k, "PodDisruptionBudget/"):
			if !matches(dig(o, "spec", "selector", "matchLabels")) {
				t.Errorf("%s selects no urbanwatch pod", k)
			}
		}
	}
	// The ConfigMap's urbanwatch.yaml loads, with the Secrets where the pod
	// mounts them.
	cm := objs["ConfigMap/urbanwatch-config"]
	if cm == nil {
		t.Fatal("no ConfigMap urbanwatch-config")
	}
	loadConfigText(t, t.TempDir(), str(cm, "data", "urbanwatch.yaml"),
		map[string]string{"/run/secrets/urbanwatch-tls/": "", "/run/secrets/urbanwatch/": ""})
	for dir := range map[string]bool{"/run/secrets/urbanwatch": true, "/run/secrets/urbanwatch-tls": true, "/etc/urbanwatch": true} {
		if mounts[dir] == "" {
			t.Errorf("nothing mounted at %s", dir)
		}
	}
	// The schema is strict: a misspelt field fails.
	bad := map[string]any{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": map[string]any{"name": "x"},
		"spec": map[string]any{"replica": 1, "serviceName": "x", "selector": map[string]any{},
			"template": map[string]any{"spec": map[string]any{"containers": []any{}}}}}
	if err := schemas["apps/v1 StatefulSet"].Validate(bad); err == nil {
		t.Error("a StatefulSet with spec.replica (misspelt) passed the schema")
	}
}
