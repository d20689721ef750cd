package scenario

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// checkRecords checks that a scenario's records are well formed: in
// arrival order, seq increasing per device and kind in the order the
// device made them (event time), Late exactly on records older than one
// delivered before for the same device and kind, event times within the
// scenario's span, every device in the city.
func checkRecords(t *testing.T, s *Scenario) {
	t.Helper()
	type key struct {
		dev  string
		kind telemetry.Kind
	}
	devices := map[string]bool{}
	for _, tr := range s.City.Trucks {
		for _, d := range tr.Devices {
			devices[d] = true
		}
	}
	for _, g := range s.City.Gauges {
		devices[g.Device] = true
	}
	newest := map[key]time.Time{}
	seqs := map[key]map[uint64]time.Time{}
	var prev time.Time
	end := s.Start.Add(s.Duration)
	for i, r := range s.Records {
		where := fmt.Sprintf("%s: record %d (%s)", s.Name, i, r.String())
		if !devices[r.Device] {
			t.Fatalf("%s: device not in the city", where)
		}
		if r.Received.Before(prev) {
			t.Fatalf("%s: received %s before the record ahead of it (%s)", where, r.Received, prev)
		}
		prev = r.Received
		if r.TS.Before(s.Start) || r.TS.After(end) {
			t.Fatalf("%s: ts outside [%s, %s]", where, s.Start, end)
		}
		if r.Received.Before(r.TS) {
			t.Fatalf("%s: received before its event time", where)
		}
		k := key{r.Device, r.Kind}
		n, seen := newest[k]
		if late := seen && r.TS.Before(n); r.Late != late {
			t.Fatalf("%s: Late %v, want %v", where, r.Late, late)
		}
		if !seen || r.TS.After(n) {
			newest[k] = r.TS
		}
		if seqs[k] == nil {
			seqs[k] = map[uint64]time.Time{}
		}
		if _, dup := seqs[k][r.Seq]; dup {
			t.Fatalf("%s: seq %d twice", where, r.Seq)
		}
		seqs[k][r.Seq] = r.TS
	}
	for k, m := range seqs {
		var last time.Time
		for seq := range uint64(len(m)) {
			ts, ok := m[seq]
			if !ok {
				t.Fatalf("%s: %s %s: seq %d missing (seqs count from 0 without gaps)", s.Name, k.dev, k.kind, seq)
			}
			if ts.Before(last) {
				t.Fatalf("%s: %s %s: seq %d is older than seq %d", s.Name, k.dev, k.kind, seq, seq-1)
			}
			last = ts
		}
	}
}

func TestScenariosWellFormed(t *testing.T) {
	names := map[string]bool{}
	for _, s := range Scenarios() {
		if names[s.Name] {
			t.Errorf("scenario %s twice", s.Name)
		}
		names[s.Name] = true
		if err := s.City.Validate(nil); err != nil {
			t.Errorf("%s: city: %v", s.Name, err)
			continue
		}
		if len(s.Records) == 0 {
			t.Errorf("%s: no records", s.Name)
		}
		checkRecords(t, &s)
		for _, e := range s.Expect {
			if e.Optional {
				t.Errorf("%s: hand-made expectation %+v is optional", s.Name, e)
			}
			if e.At.Before(s.Start) || e.At.After(s.Start.Add(s.Duration)) {
				t.Errorf("%s: expectation %+v outside the scenario", s.Name, e)
			}
		}
	}
}

// TestScenariosAgreeWithJudge derives each hand-made scenario's ground
// truth with the judge from the scripted true positions and values, and
// finds the hand-written expectations, none of them noise-dependent.
func TestScenariosAgreeWithJudge(t *testing.T) {
	for _, b := range builders {
		s := b()
		t.Run(s.Name, func(t *testing.T) {
			j, err := newJudge(s.City)
			if err != nil {
				t.Fatal(err)
			}
			j.posAt = func(dev string, ts int64) (orb.Point, bool) {
				p, ok := s.pos[dev][ts]
				return p, ok
			}
			for i := range s.Records {
				r := &s.Records[i]
				ts := r.TS.UnixNano()
				j.feed(r, s.pos[r.Device][ts], s.truth[r.Device][ts])
			}
			byTS := slices.Clone(s.Records)
			slices.SortStableFunc(byTS, func(a, b telemetry.Record) int { return a.TS.Compare(b.TS) })
			for i := range byTS {
				r := &byTS[i]
				j.feedComplete(r, s.pos[r.Device][r.TS.UnixNano()])
			}
			j.advance(s.Start.Add(s.Duration).UnixNano())
			got := j.expect()
			if len(got) != len(s.Expect) {
				t.Fatalf("judge finds %v\nscenario expects %v", got, s.Expect)
			}
			for i, g := range got {
				w := s.Expect[i]
				d := g.At.Sub(w.At)
				if g.Rule != w.Rule || g.Subject != w.Subject || d < -time.Second || d > time.Second || g.Optional {
					t.Errorf("judge finds %+v, scenario expects %+v", g, w)
				}
			}
		})
	}
}
