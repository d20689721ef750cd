package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// TestProtocolDocExamples decodes every example in docs/protocol.md: the
// contract page must only show messages that are accepted.
func TestProtocolDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- example: (\\w+) -->\\s*```json\\n(.*?)\\n```")
	found := map[string]int{}
	for _, m := range re.FindAllSubmatch(doc, -1) {
		kind := kindByName(t, string(m[1]))
		found[kind.String()]++
		if _, err := Decode(kind, m[2]); err != nil {
			t.Errorf("docs/protocol.md %s example %s: %v", kind, m[2], err)
		}
	}
	for _, k := range telemetry.Kinds {
		if found[k.String()] == 0 {
			t.Errorf("docs/protocol.md has no example for %s", k)
		}
	}
}

// TestProtocolSchemasMatchDecoder checks the JSON Schemas against the
// decoder: every property the schema lists is accepted, every required one is
// required, and a property it does not list is refused.
func TestProtocolSchemasMatchDecoder(t *testing.T) {
	examples := map[telemetry.Kind]string{
		telemetry.KindGPS:     `{"ts":1795615805250,"seq":1,"lat":36.7,"lon":119.1,"speed_kmh":3,"heading":9,"sats":9,"valid":true}`,
		telemetry.KindSensors: `{"ts":1795615805250,"seq":1,"cover":"open","body":"down","load_kg":10}`,
		telemetry.KindRain:    `{"ts":1795615805250,"seq":1,"mm":0.2,"interval_s":60}`,
		telemetry.KindDepth:   `{"ts":1795615805250,"seq":1,"depth_cm":3}`,
	}
	for kind, full := range examples {
		data, err := os.ReadFile(fmt.Sprintf("../docs/schema/%s.schema.json", kind))
		if err != nil {
			t.Fatal(err)
		}
		var schema struct {
			AdditionalProperties *bool                      `json:"additionalProperties"`
			Required             []string                   `json:"required"`
			Properties           map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(data, &schema); err != nil {
			t.Fatalf("%s schema: %v", kind, err)
		}
		if schema.AdditionalProperties == nil || *schema.AdditionalProperties {
			t.Errorf("%s schema allows additional properties; the decoder does not", kind)
		}
		var msg map[string]json.RawMessage
		if err := json.Unmarshal([]byte(full), &msg); err != nil {
			t.Fatal(err)
		}
		if len(msg) != len(schema.Properties) {
			t.Errorf("%s: schema has %d properties, the test message %d", kind, len(schema.Properties), len(msg))
		}
		for name := range schema.Properties {
			if _, ok := msg[name]; !ok {
				t.Errorf("%s: schema property %q missing from the test message", kind, name)
				continue
			}
			without := map[string]json.RawMessage{}
			for k, v := range msg {
				if k != name {
					without[k] = v
				}
			}
			b, _ := json.Marshal(without)
			_, err := Decode(kind, b)
			required := slices.Contains(schema.Required, name)
			if required && (err == nil || err.(*Rejection).Reason != ReasonMissingField) {
				t.Errorf("%s: schema requires %q but the decoder says %v without it", kind, name, err)
			}
			if !required && err != nil {
				t.Errorf("%s: %q is optional in the schema but the decoder says %v without it", kind, name, err)
			}
		}
		extra := bytes.Replace([]byte(full), []byte(`{`), []byte(`{"extra":1,`), 1)
		if _, err := Decode(kind, extra); err == nil || err.(*Rejection).Reason != ReasonUnknownField {
			t.Errorf("%s: a property outside the schema got %v", kind, err)
		}
	}
}
