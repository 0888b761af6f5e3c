package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/spf13/cobra"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/routing"
)

// IssueBound is what routing may spend on one issue for each of the two lookups the routing bench
// measures: finding a point's grid, and explaining a route.
const IssueBound = 50 * time.Microsecond

// RoutingConfig says how much of the rules engine and the grid lookup to measure, and on which
// city.
type RoutingConfig struct {
	// Ops is how many calls each round of each measure makes.
	Ops int
	// Rounds is how many timed rounds each measure runs, after one round that is not timed; a
	// measure's figure is its median round's.
	Rounds int
	// Variants is how many issues are described for each grid and category, each with its own
	// urgency, text and instant.
	Variants int
	// Seed seeds the random points and descriptions, so that two runs measure the same work.
	Seed uint64
	// CatalogPath and RulesPath are the city and its rules; empty for the sample city's.
	CatalogPath, RulesPath string
}

// RoutingResult is what one run of the routing bench measured.
type RoutingResult struct {
	Config RoutingConfig
	// Extent is the bounding box of the city's grids; the points were drawn from it widened by
	// half its size, a quarter on each side.
	Extent orb.Bound
	// Points is how many points were drawn, and InGrid how many of them lie in a grid.
	Points, InGrid int
	// Grids, Categories and Described are the grids and categories crossed and the issues
	// described over them; Summoned is how many of those a rule (or the table's otherwise)
	// routes to units, the rest waiting for a dispatcher.
	Grids, Categories, Described, Summoned int
	// Measures are the figures, the baseline first.
	Measures []Measure
}

// Measure is one operation timed over several rounds in one goroutine.
type Measure struct {
	// Name says what one operation is.
	Name string
	// Ops is how many operations each round made.
	Ops int
	// Rounds are the rounds' times per operation, in the order they ran.
	Rounds []time.Duration
	// Allocs and Bytes are the heap allocations per operation over every timed round.
	Allocs, Bytes float64
	// Bound says whether the operation is one an issue pays, judged against IssueBound; the
	// baseline is not.
	Bound bool
}

// PerOp is the median round's time per operation.
func (m Measure) PerOp() time.Duration {
	if len(m.Rounds) == 0 {
		return 0
	}
	sorted := slices.Clone(m.Rounds)
	slices.Sort(sorted)
	return sorted[(len(sorted)-1)/2]
}

// routingCommand returns `whistle bench routing`.
func routingCommand() *cobra.Command {
	cfg := RoutingConfig{}
	cmd := &cobra.Command{
		Use:   "routing",
		Short: "Measure, in this process, finding a point's grid and explaining a route, per issue",
		Long: "bench routing loads the city and its rules as routing does (the sample city's by default) " +
			"and, in one goroutine of this process with no server, stream or Redis, times finding the grid " +
			"of random points over the city and around it (a point in no grid names the nearest grid) and " +
			"explaining the route of issues described for every grid and category with varied urgency, text " +
			"and instant, as `whistle route explain` does. Each measure runs --rounds rounds of -n calls " +
			"after one untimed round; it prints the median round's time per call, the allocations per call, " +
			"the calls a second, the ratio to one catalog lookup of a grid measured in the same run, and " +
			"whether the call stays under " + IssueBound.String() + " per issue.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			res, err := RunRouting(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return res.Print(cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVarP(&cfg.Ops, "n", "n", 20000, "calls in each round of each measure")
	cmd.Flags().IntVar(&cfg.Rounds, "rounds", 7, "timed rounds of each measure; the median round is reported")
	cmd.Flags().IntVar(&cfg.Variants, "variants", 4, "issues described for each grid and category")
	cmd.Flags().Uint64Var(&cfg.Seed, "seed", 1, "seed of the random points and descriptions")
	cmd.Flags().StringVar(&cfg.CatalogPath, "catalog", "", "catalog file, as whistle up --catalog; default: the sample city")
	cmd.Flags().StringVar(&cfg.RulesPath, "rules", "", "rules file, as whistle up --rules; default: the sample city's rules")
	return cmd
}

// sink keeps what a measured call returns alive, so that no call can be optimised away.
var sink struct {
	id    string
	area  catalog.Area
	units []string
}

// RunRouting measures the grid lookup and the route explanation of cfg's city, with one lookup of
// a grid by its id as the baseline.
func RunRouting(ctx context.Context, cfg RoutingConfig) (*RoutingResult, error) {
	if cfg.Ops < 1 || cfg.Rounds < 1 || cfg.Variants < 1 {
		return nil, fmt.Errorf("bench routing: -n, --rounds and --variants must be at least 1; got %d, %d and %d", cfg.Ops, cfg.Rounds, cfg.Variants)
	}
	cat, err := catalog.Load(cfg.CatalogPath)
	if err != nil {
		return nil, fmt.Errorf("bench routing: %w", err)
	}
	explainer, err := routing.NewExplainer(routing.Config{CatalogPath: cfg.CatalogPath, RulesPath: cfg.RulesPath})
	if err != nil {
		return nil, fmt.Errorf("bench routing: %w", err)
	}
	var grids []catalog.Area
	for _, a := range cat.Areas() {
		if a.Level == catalog.LevelGrid {
			grids = append(grids, a)
		}
	}
	res := &RoutingResult{Config: cfg, Grids: len(grids), Categories: len(cat.Categories())}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))

	extent, ok := gridExtent(grids)
	if !ok {
		return nil, errors.New("bench routing: the catalog's grids have no boundaries, so no point can be looked up")
	}
	res.Extent = extent
	var in, out []orb.Point
	all := make([]orb.Point, cfg.Ops)
	for i := range all {
		all[i] = randomPoint(rng, extent)
		if _, _, err := cat.Locate(all[i][1], all[i][0]); err == nil {
			in = append(in, all[i])
		} else if outside := (*catalog.OutsideError)(nil); errors.As(err, &outside) && outside.Nearest != "" {
			out = append(out, all[i])
		} else {
			return nil, fmt.Errorf("bench routing: the point %v: %w", all[i], err)
		}
	}
	res.Points, res.InGrid = len(all), len(in)

	described := describe(rng, cat, grids, cfg.Variants)
	res.Described = len(described)
	for _, h := range described {
		units, err := explainer.Explain(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("bench routing: explain %s in %s: %w", h.Category, h.Grid, err)
		}
		if len(units) > 0 {
			res.Summoned++
		}
	}

	locate := func(points []orb.Point, inGrid bool) func(int) error {
		return func(i int) error {
			pt := points[i%len(points)]
			id, _, err := cat.Locate(pt[1], pt[0])
			sink.id = id
			if inGrid {
				return err
			}
			return nil // a point in no grid is an error that names the nearest grid
		}
	}
	measures := []timed{
		{"baseline: a grid and the areas above it by the grid's id (catalog.Grid)", false, func(i int) error {
			g, _, _, err := cat.Grid(grids[i%len(grids)].ID)
			sink.area = g
			return err
		}},
		{fmt.Sprintf("grid lookup from a point (catalog.Locate), random points over the city and around it (%.0f %% in a grid)",
			100*float64(len(in))/float64(len(all))), true, locate(all, false)},
	}
	if len(in) > 0 {
		measures = append(measures, timed{"grid lookup from a point in a grid", true, locate(in, true)})
	}
	if len(out) > 0 {
		measures = append(measures, timed{"grid lookup from a point in no grid (the nearest grid named)", true, locate(out, false)})
	}
	measures = append(measures, timed{fmt.Sprintf("route explain, every rule tried (%d issues: %d grids × %d categories × %d)",
		len(described), len(grids), res.Categories, cfg.Variants), true, func(i int) error {
		units, err := explainer.Explain(ctx, described[i%len(described)])
		sink.units = units
		return err
	}})
	for _, m := range measures {
		got, err := measure(m, cfg)
		if err != nil {
			return nil, fmt.Errorf("bench routing: %s: %w", m.name, err)
		}
		res.Measures = append(res.Measures, got)
	}
	return res, nil
}

// timed is an operation to measure: what it is, whether an issue pays it (and IssueBound
// judges it), and the call, given its index in the round.
type timed struct {
	name  string
	bound bool
	op    func(i int) error
}

// measure calls t's op cfg.Ops times in a round, once untimed and then cfg.Rounds times timed,
// in this goroutine, counting the heap allocations of the timed rounds. It stops at the op's
// first error and returns it.
func measure(t timed, cfg RoutingConfig) (Measure, error) {
	m := Measure{Name: t.name, Ops: cfg.Ops, Bound: t.bound}
	round := func() (time.Duration, error) {
		start := time.Now()
		for i := range cfg.Ops {
			if err := t.op(i); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	if _, err := round(); err != nil {
		return m, err
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var mallocs, bytes uint64
	for range cfg.Rounds {
		d, err := round()
		if err != nil {
			return m, err
		}
		// Reading the counters stops the world; it falls between the rounds, outside their time.
		runtime.ReadMemStats(&after)
		mallocs, bytes = mallocs+after.Mallocs-before.Mallocs, bytes+after.TotalAlloc-before.TotalAlloc
		before = after
		m.Rounds = append(m.Rounds, d/time.Duration(cfg.Ops))
	}
	ops := float64(cfg.Ops * cfg.Rounds)
	m.Allocs, m.Bytes = float64(mallocs)/ops, float64(bytes)/ops
	return m, nil
}

// gridExtent is the bounding box of every grid's boundary.
func gridExtent(grids []catalog.Area) (orb.Bound, bool) {
	var b orb.Bound
	found := false
	for _, g := range grids {
		if len(g.Boundary) == 0 {
			continue
		}
		if !found {
			b, found = g.Boundary.Bound(), true
			continue
		}
		b = b.Union(g.Boundary.Bound())
	}
	return b, found
}

// randomPoint draws a point from b widened by a quarter of its size on each side, so that some
// fall in no grid and take the path that finds the nearest.
func randomPoint(rng *rand.Rand, b orb.Bound) orb.Point {
	w, h := b.Max[0]-b.Min[0], b.Max[1]-b.Min[1]
	return orb.Point{b.Min[0] - w/4 + rng.Float64()*w*1.5, b.Min[1] - h/4 + rng.Float64()*h*1.5}
}

// issueTexts are what the described issues say: plain ones, ones with the words the rules look
// for (in English, in Chinese, in full-width letters), none at all, and a long one, since every
// rule with words reads the whole text.
var issueTexts = []string{
	"Drain blocked outside No. 12",
	"Rubbish piled by the east gate for three days; rats seen at night",
	"楼下垃圾堆很久没人清理，有老鼠和蟑螂",
	"ＲＡＴＳ in the stairwell of block 4",
	"Two neighbours came to a fight over a parking space",
	"邻居吵架，有人持刀",
	"Loud music from the square dance after 22:00",
	"",
	strings.Repeat("The pavement outside the school has been broken for weeks and children walk in the road. ", 6),
}

// describe describes variants issues for every grid and category, each with a random urgency
// (the unspecified one among them), text and instant within one week in the city's time zone,
// so that the rules on urgency, words, time of day and kind of day all run.
func describe(rng *rand.Rand, cat *catalog.Catalog, grids []catalog.Area, variants int) []routing.Hypothetical {
	week := time.Date(2026, 11, 30, 0, 0, 0, 0, cat.TimeZone()) // a Monday
	urgencies := []whistlev1.Urgency{whistlev1.Urgency_URGENCY_UNSPECIFIED, whistlev1.Urgency_URGENCY_NORMAL,
		whistlev1.Urgency_URGENCY_URGENT, whistlev1.Urgency_URGENCY_EMERGENCY}
	var out []routing.Hypothetical
	for _, g := range grids {
		for _, k := range cat.Categories() {
			for range variants {
				out = append(out, routing.Hypothetical{
					Grid: g.ID, Category: k.ID,
					Urgency: urgencies[rng.IntN(len(urgencies))],
					Text:    issueTexts[rng.IntN(len(issueTexts))],
					At:      week.Add(time.Duration(rng.Int64N(int64(7 * 24 * time.Hour)))),
				})
			}
		}
	}
	// Shuffled, so that consecutive calls do not walk the rules the same way and flatter the
	// processor's branch prediction.
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Print writes the figures as a markdown table, then one verdict per measure against IssueBound.
func (r *RoutingResult) Print(w io.Writer) error {
	if len(r.Measures) == 0 {
		return errors.New("bench routing: nothing was measured")
	}
	base := r.Measures[0].PerOp()
	header := []string{"measure (one call, one goroutine)", fmt.Sprintf("ns/op (median of %d rounds of %d)", r.Config.Rounds, r.Config.Ops),
		"rounds, fastest – slowest", "allocs/op", "B/op", "ops/s", "÷ baseline", "under " + us(IssueBound) + " per issue"}
	var rows [][]string
	for _, m := range r.Measures {
		per := m.PerOp()
		verdict := "—"
		if m.Bound {
			verdict = "no"
			if per < IssueBound {
				verdict = "yes"
			}
		}
		rows = append(rows, []string{m.Name, fmt.Sprintf("%d", per.Nanoseconds()),
			fmt.Sprintf("%d – %d", slices.Min(m.Rounds).Nanoseconds(), slices.Max(m.Rounds).Nanoseconds()),
			fmt.Sprintf("%.1f", m.Allocs), fmt.Sprintf("%.0f", m.Bytes),
			fmt.Sprintf("%.0f", float64(time.Second)/float64(per)),
			fmt.Sprintf("%.1f", float64(per)/float64(base)), verdict})
	}
	if err := printTable(w, header, rows); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\npoints: %d drawn over the grids' extent, %.4f–%.4f N and %.4f–%.4f E, widened by a quarter on each side; %d in a grid\n"+
		"issues described: %d (%d grids × %d categories × %d), %d routed to units by the rules, %d left for a dispatcher\n"+
		"Go %s, GOMAXPROCS %d\n\n",
		r.Points, r.Extent.Min[1], r.Extent.Max[1], r.Extent.Min[0], r.Extent.Max[0], r.InGrid,
		r.Described, r.Grids, r.Categories, r.Config.Variants, r.Summoned, r.Described-r.Summoned,
		runtime.Version(), runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	for _, m := range r.Measures[1:] {
		per := m.PerOp()
		verdict := "under"
		if per >= IssueBound {
			verdict = "OVER"
		}
		if _, err := fmt.Fprintf(w, "verdict: %s: %s per issue, %s the %s bound (%.1f %% of it)\n",
			m.Name, us(per), verdict, us(IssueBound), 100*float64(per)/float64(IssueBound)); err != nil {
			return err
		}
	}
	return nil
}
