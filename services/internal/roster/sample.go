package roster

import (
	"context"
	_ "embed"
	"log/slog"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/filewatch"
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

// Follow watches the rosters file at path and calls set with the rosters each time it changes and
// passes its checks, while ctx lasts; current returns the rosters in force. A file that fails its
// checks is logged and the rosters in force stay. service names the caller in the log.
func Follow(ctx context.Context, path string, cat *catalog.Catalog, service string, logger *slog.Logger, current func() *Rosters, set func(*Rosters)) {
	exists := func(id string) bool { _, err := cat.Unit(id); return err == nil }
	filewatch.Watch(ctx, []string{path}, "rosters", logger, func(context.Context) {
		r, err := Load(path, cat.TimeZone(), exists)
		if err != nil {
			logger.Error(service+": a changed rosters file was refused; the rosters in force stay", "version", current().Version(), "err", err)
			return
		}
		if r.Version() != current().Version() {
			set(r)
			logger.Info(service+": rosters reloaded", "version", r.Version())
		}
	})
}
