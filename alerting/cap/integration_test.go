package cap_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/urbanwatch/urbanwatch/alerting/cap"
)

// schemaPath is where the CAP 1.2 schema sits under the shared folder.
const schemaPath = "shared/data/cap/CAP-v1.2.xsd"

// xmllintInstall is the command that installs xmllint (Debian/Ubuntu).
const xmllintInstall = "apt-get install -y libxml2-utils"

// integration stops a test that needs xmllint or the schema when this
// machine lacks them: a failure when URBANWATCH_REQUIRE_INTEGRATION=1 (CI),
// a skip otherwise, as internal/testenv does for its binaries.
func integration(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("URBANWATCH_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%s is required (URBANWATCH_REQUIRE_INTEGRATION=1) but not available\n  install xmllint with: %s; the schema is <parent>/%s beside the repository",
			what, xmllintInstall, schemaPath)
	}
	t.Skipf("SKIPPED INTEGRATION: %s not available\n  install xmllint with: %s; the schema is <parent>/%s beside the repository\n  (set URBANWATCH_REQUIRE_INTEGRATION=1 to make this a failure)",
		what, xmllintInstall, schemaPath)
}

// xmllint returns the xmllint binary, or stops the test.
func xmllint(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		integration(t, "xmllint")
	}
	return bin
}

// schema finds the CAP schema by walking up from the package directory to
// a folder holding shared/data/cap/CAP-v1.2.xsd (/work/main/alerting/cap
// finds /work/shared; a CI clone at <parent>/repo finds <parent>/shared).
func schema(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for {
		p := filepath.Join(dir, schemaPath)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		up := filepath.Dir(dir)
		if up == dir {
			integration(t, "the CAP 1.2 schema ("+schemaPath+" above the package directory)")
			return ""
		}
		dir = up
	}
}

// lint runs xmllint --noout with args on doc, written to a temporary file.
func lint(t *testing.T, name string, doc []byte, args ...string) {
	t.Helper()
	bin := xmllint(t)
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, append(append([]string{"--noout"}, args...), file)...).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint %v %s: %v\n%s\ndocument:\n%s", args, name, err, out, doc)
	}
}

// validCAP checks doc against the CAP 1.2 schema.
func validCAP(t *testing.T, doc []byte) {
	t.Helper()
	lint(t, "alert.xml", doc, "--schema", schema(t))
}

// render is how every test gets a document: XML, validated against the
// schema, parsed back, and rendered again to the very same bytes.
func render(t *testing.T, m *cap.Message) (doc []byte, back *cap.Message) {
	t.Helper()
	doc, err := m.XML()
	if err != nil {
		t.Fatalf("XML: %v", err)
	}
	validCAP(t, doc)
	back, err = cap.Parse(doc)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	if err := back.Validate(); err != nil {
		t.Fatalf("parsed message does not validate: %v", err)
	}
	again, err := back.XML()
	if err != nil {
		t.Fatalf("XML of parsed message: %v", err)
	}
	if !bytes.Equal(doc, again) {
		t.Fatalf("round trip changed the document:\n%s\n---\n%s", doc, again)
	}
	return doc, back
}
