package roster

import (
	_ "embed"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// The sample city's rosters are generated: change ./rostergen and run go generate.
//go:generate go run ./rostergen -o sample.yaml

//go:embed sample.yaml
var sample []byte

// SampleName is the name the sample rosters' faults are reported under.
const SampleName = "sample-rosters.yaml"

// ForCatalog returns the rosters a process runs with: the file at path, or, without one, the
// sample city's rosters when cat is the sample city, and no rosters for another city (its units'
// inboxes alone hold their assignments, and any officer of a unit may act for it).
func ForCatalog(path string, cat *catalog.Catalog) (*Rosters, error) {
	exists := func(id string) bool { _, err := cat.Unit(id); return err == nil }
	if path != "" {
		return Load(path, cat.TimeZone(), exists)
	}
	if sampleCat, err := catalog.Sample(); err == nil && sampleCat.Digest() == cat.Digest() {
		return Parse(SampleName, sample, cat.TimeZone(), exists)
	}
	return None(cat.TimeZone()), nil
}

// None is no rosters: every unit's inbox alone holds its assignments.
func None(zone *time.Location) *Rosters {
	return &Rosters{people: map[string]Person{}, units: map[string]*Unit{}, supervisors: map[string]string{}, zone: zone, version: "none"}
}

// SampleOfficer is the first officer of a unit in the sample rosters, for examples and tests.
func SampleOfficer(unit string) string { return unit + ".1" }
