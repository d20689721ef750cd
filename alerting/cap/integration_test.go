package cap_test

import (
	"bytes"
	"testing"

	"github.com/urbanwatch/urbanwatch/alerting/cap"
	"github.com/urbanwatch/urbanwatch/internal/testenv"
)

// lint runs xmllint --noout with args on doc.
func lint(t *testing.T, name string, doc []byte, args ...string) {
	t.Helper()
	testenv.XMLLint(t, name, doc, args...)
}

// validCAP checks doc against the CAP 1.2 schema.
func validCAP(t *testing.T, doc []byte) {
	t.Helper()
	testenv.ValidCAP(t, doc)
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
