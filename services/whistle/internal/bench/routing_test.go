package bench_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/bench"
)

func TestARoutingBenchRunMeasuresEveryLookupAndPrintsEveryRowAndVerdict(t *testing.T) {
	sample, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	grids, categories := 0, len(sample.Categories())
	for _, a := range sample.Areas() {
		if a.Level == catalog.LevelGrid {
			grids++
		}
	}
	res, err := bench.RunRouting(t.Context(), bench.RoutingConfig{Ops: 200, Rounds: 3, Variants: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Points != 200 || res.InGrid == 0 || res.InGrid == res.Points {
		t.Errorf("%d of %d points lie in a grid; want some in a grid and some in none", res.InGrid, res.Points)
	}
	// The sample rules route most issues, and leave the category "other" to a dispatcher.
	if res.Grids != grids || res.Categories != categories || res.Described != grids*categories || res.Summoned == 0 || res.Summoned == res.Described {
		t.Errorf("%d issues described over %d grids and %d categories, %d routed to units; want one for each of %d grids × %d categories, most but not all routed",
			res.Described, res.Grids, res.Categories, res.Summoned, grids, categories)
	}
	if len(res.Measures) != 5 {
		t.Fatalf("%d measures, want the baseline and four", len(res.Measures))
	}
	for _, m := range res.Measures {
		if len(m.Rounds) != 3 || m.PerOp() <= 0 {
			t.Errorf("%s: %d rounds, %s per call; want 3 rounds and a positive time", m.Name, len(m.Rounds), m.PerOp())
		}
	}
	var out bytes.Buffer
	if err := res.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		"| measure (one call, one goroutine) | ns/op (median of 3 rounds of 200) | rounds, fastest – slowest | allocs/op | B/op | ops/s | ÷ baseline | under 50.0 µs per issue |",
		"| baseline: a grid and the areas above it by the grid's id (catalog.Grid) |",
		"| grid lookup from a point (catalog.Locate), random points over the city and around it (",
		"| grid lookup from a point in a grid |",
		"| grid lookup from a point in no grid (the nearest grid named) |",
		fmt.Sprintf("| route explain, every rule tried (%d issues: %d grids × %d categories × 1) |", grids*categories, grids, categories),
		"points: 200 drawn over the grids' extent, ",
		fmt.Sprintf("issues described: %d (%d grids × %d categories × 1)", grids*categories, grids, categories),
		"verdict: grid lookup from a point (catalog.Locate), random points over the city and around it (",
		"verdict: grid lookup from a point in a grid: ",
		"verdict: grid lookup from a point in no grid (the nearest grid named): ",
		fmt.Sprintf("verdict: route explain, every rule tried (%d issues: %d grids × %d categories × 1): ", grids*categories, grids, categories),
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the output has no %q:\n%s", row, out.String())
		}
	}
	if n := strings.Count(out.String(), "\nverdict: "); n != 4 {
		t.Errorf("%d verdicts, want one per measure but the baseline:\n%s", n, out.String())
	}
	t.Logf("\n%s", out.String())
}

func TestARoutingBenchRefusesNothingToMeasure(t *testing.T) {
	if _, err := bench.RunRouting(t.Context(), bench.RoutingConfig{Ops: 0, Rounds: 1, Variants: 1}); err == nil {
		t.Error("a routing bench of 0 calls a round ran; want it refused")
	}
}
