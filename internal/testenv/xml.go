package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CAPSchemaPath is where the CAP 1.2 schema sits in the shared folder
// beside the repository.
const CAPSchemaPath = "shared/data/cap/CAP-v1.2.xsd"

// XMLLintInstallHint is the command that installs xmllint (Debian/Ubuntu).
const XMLLintInstallHint = "apt-get install -y libxml2-utils"

// CAPSchema finds the CAP 1.2 schema by walking up from the working
// directory to a folder holding shared/data/cap/CAP-v1.2.xsd (a package in
// /work/main finds /work/shared; a CI clone at <parent>/repo finds
// <parent>/shared), or skips or fails t as for a missing binary.
func CAPSchema(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for {
		p := filepath.Join(dir, CAPSchemaPath)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		up := filepath.Dir(dir)
		if up == dir {
			missing(t, "the CAP 1.2 schema", "place ../shared beside the repository", errors.New(CAPSchemaPath+" not found above "+dir))
			return ""
		}
		dir = up
	}
}

// XMLLint runs xmllint --noout with args on doc (written to a temporary
// file named name) and fails t with xmllint's report if it objects.
func XMLLint(t testing.TB, name string, doc []byte, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		missing(t, "xmllint", XMLLintInstallHint, err)
	}
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, append(append([]string{"--noout"}, args...), file)...).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint %v %s: %v\n%s\ndocument:\n%s", args, name, err, out, doc)
	}
}

// ValidCAP fails t unless doc is valid against the CAP 1.2 schema.
func ValidCAP(t testing.TB, doc []byte) {
	t.Helper()
	XMLLint(t, "alert.xml", doc, "--schema", CAPSchema(t))
}
