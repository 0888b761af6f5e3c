package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// scorecardCommand prints the scorecards of departments, units or streets over a period.
func scorecardCommand(cfg *config) *cobra.Command {
	var department, unit, street bool
	var from, until string
	cmd := &cobra.Command{
		Use:   "scorecard --department|--unit|--street [ID] [--from DATE] [--until DATE]",
		Short: "Show scorecards: response, resolution and satisfaction rates, times, breaches, for a period",
		Long: `Show the scorecards of departments, units or streets: of the parts dispatched to each in the
period (withdrawn ones left out), how many reported in and resolved, on time or not, how they were
rated, how long they took, their breaches by escalation level, returns, extensions and urges; for
streets, the issues raised there too. Outcomes count as they stand now. Without an ID, every one
in your scope that had a part in the period, ranked; those with too few parts are listed after,
unranked.

The period is the current month in the city's time zone unless --from or --until says otherwise.
A date (2025-03-01) is a whole day in the city's time zone, included at either end; a time
(RFC 3339, 2025-03-01T08:00:00+08:00) is taken as it is, --until excluded.`,
		Args: cobra.MaximumNArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			var kind whistlev1.ScorecardKind
			n := 0
			for k, set := range map[whistlev1.ScorecardKind]bool{
				whistlev1.ScorecardKind_SCORECARD_KIND_DEPARTMENT: department,
				whistlev1.ScorecardKind_SCORECARD_KIND_UNIT:       unit,
				whistlev1.ScorecardKind_SCORECARD_KIND_STREET:     street,
			} {
				if set {
					kind, n = k, n+1
				}
			}
			if n != 1 {
				return invalid("give one of --department, --unit or --street")
			}
			req := &whistlev1.GetScorecardsRequest{Kind: kind}
			if len(args) == 1 {
				req.Id = args[0]
			}
			var zone *time.Location
			if needsZone(from) || needsZone(until) {
				z, err := cityZone(ctx, c)
				if err != nil {
					return err
				}
				zone = z
			}
			start, end, err := period(from, until, zone, now())
			if err != nil {
				return err
			}
			req.From, req.Until = timestamppb.New(start), timestamppb.New(end)
			uctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.escalation.GetScorecards(uctx, req)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			return printScorecards(c, kind, resp, zone)
		}),
	}
	cmd.Flags().BoolVar(&department, "department", false, "scorecards of departments (every unit of each)")
	cmd.Flags().BoolVar(&unit, "unit", false, "scorecards of units")
	cmd.Flags().BoolVar(&street, "street", false, "scorecards of streets")
	cmd.Flags().StringVar(&from, "from", "", "the first day (2025-03-01) or the start (RFC 3339) of the period; default: the 1st of this month")
	cmd.Flags().StringVar(&until, "until", "", "the last day (2025-03-31, included) or the end (RFC 3339, excluded) of the period; default: the end of this month")
	return cmd
}

// needsZone reports whether a period flag is read in the city's time zone: a date, or left out
// (the current month).
func needsZone(v string) bool {
	_, err := time.Parse(time.RFC3339, v)
	return err != nil
}

// cityZone asks the server for the city's time zone, which its area of the city names; a server
// that names none runs the catalog's default.
func cityZone(ctx context.Context, c *client) (*time.Location, error) {
	ctx, cancel := unary(ctx)
	defer cancel()
	resp, err := c.routing.ListAreas(ctx, &whistlev1.ListAreasRequest{})
	if err != nil {
		return nil, err
	}
	name := catalog.DefaultTimeZone
	for _, a := range resp.GetAreas() {
		if a.GetLevel() == catalog.LevelCity && a.GetTimeZone() != "" {
			name = a.GetTimeZone()
		}
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("the city's time zone %q: %w", name, err)
	}
	return z, nil
}

// period reads --from and --until: a date is a whole day in zone (--until's included), a time
// is taken as it is, and one left out is the start or the end of the month of at in zone.
func period(from, until string, zone *time.Location, at time.Time) (start, end time.Time, err error) {
	read := func(flag, v string, day int) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t, nil
		}
		d, err := time.ParseInLocation(time.DateOnly, v, zone)
		if err != nil {
			return time.Time{}, invalid("--%s: want a date like 2025-03-01 or a time like 2025-03-01T08:00:00+08:00, not %q", flag, v)
		}
		return d.AddDate(0, 0, day), nil
	}
	y, m, _ := at.In(zoneOr(zone)).Date()
	month := time.Date(y, m, 1, 0, 0, 0, 0, zoneOr(zone))
	start, end = month, month.AddDate(0, 1, 0)
	if from != "" {
		if start, err = read("from", from, 0); err != nil {
			return
		}
	}
	if until != "" {
		if end, err = read("until", until, 1); err != nil {
			return
		}
	}
	return start, end, nil
}

// zoneOr is zone, or UTC when none was needed.
func zoneOr(zone *time.Location) *time.Location {
	if zone == nil {
		return time.UTC
	}
	return zone
}

// printScorecards writes the scorecards as a table under a line that says what and when.
func printScorecards(c *client, kind whistlev1.ScorecardKind, resp *whistlev1.GetScorecardsResponse, zone *time.Location) error {
	z := zone // the city's, when the period was read in it; else the reader's own
	if z == nil {
		z = time.Local
	}
	head := fmt.Sprintf("Scorecards of %ss, %s to %s (%s)", enumText(kind), resp.GetFrom().AsTime().In(z).Format("2006-01-02 15:04"),
		resp.GetUntil().AsTime().In(z).Format("2006-01-02 15:04"), z)
	if a := resp.GetAreaId(); a != "" {
		head += ", counting the parts in " + a
	}
	if err := say(c.out, head+"."); err != nil {
		return err
	}
	if len(resp.GetScorecards()) == 0 {
		return say(c.out, "No scorecards: nothing was dispatched in the period.")
	}
	streets := kind == whistlev1.ScorecardKind_SCORECARD_KIND_STREET
	tw := table(c.out)
	cols := []string{"RANK", "ID", "NAME", "PARTS", "RESPONSE", "ON-TIME REPORT-IN", "RESOLUTION", "ON-TIME RESOLUTION", "SATISFACTION",
		"ACK P50/P90", "RESOLVE P50/P90", "BREACHES", "RETURNS", "EXTENSIONS ASKED/APPROVED/DENIED", "URGES"}
	if streets {
		cols = append(cols, "WHISTLES")
	}
	row(tw, cols...)
	small := false
	for _, s := range resp.GetScorecards() {
		rank := strconv.Itoa(int(s.GetRank()))
		if s.GetRank() == 0 {
			rank = "-"
		}
		small = small || s.GetSmallSample()
		cells := []string{rank, s.GetId(), orDash(s.GetName()), strconv.Itoa(int(s.GetDispatched())),
			rate(s.GetResponseRate()), rate(s.GetOnTimeReportInRate()), rate(s.GetResolutionRate()), rate(s.GetOnTimeResolutionRate()),
			rate(s.GetSatisfactionRate()),
			times(s.GetMedianTimeToAcknowledge(), s.GetP90TimeToAcknowledge()), times(s.GetMedianTimeToResolve(), s.GetP90TimeToResolve()),
			levels(s), strconv.Itoa(int(s.GetReturns())),
			fmt.Sprintf("%d/%d/%d", s.GetExtensionsRequested(), s.GetExtensionsApproved(), s.GetExtensionsDenied()),
			strconv.Itoa(int(s.GetUrges()))}
		if streets {
			cells = append(cells, strconv.Itoa(int(s.GetWhistles())))
		}
		row(tw, cells...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if small {
		return say(c.out, fmt.Sprintf("A rank of - is a small sample: fewer than %d parts dispatched, not ranked.", resp.GetMinSample()))
	}
	return nil
}

// rate is a share as a percentage with its count: "95.0% (19/20)"; "-" of nothing.
func rate(r *whistlev1.ScorecardRate) string {
	if r.GetDenominator() == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", 100*r.GetValue(), r.GetNumerator(), r.GetDenominator())
}

// times is a median and a 90th percentile: "12m/1h3m"; "-" for none.
func times(median, p90 *durationpb.Duration) string {
	if median == nil {
		return "-"
	}
	return shortSpan(median.AsDuration()) + "/" + shortSpan(p90.AsDuration())
}

// shortSpan is a time a part took, to the second, or to the millisecond under a minute.
func shortSpan(d time.Duration) string {
	if d < time.Minute {
		return span(d.Round(time.Millisecond))
	}
	return span(d.Round(time.Second))
}

// levels is the count of breaches and how far each went up its chain: "5 (L0 4, L1 1)"; "0".
func levels(s *whistlev1.Scorecard) string {
	if s.GetBreaches() == 0 {
		return "0"
	}
	var by []string
	for _, l := range s.GetBreachesByLevel() {
		by = append(by, fmt.Sprintf("L%d %d", l.GetLevel(), l.GetCount()))
	}
	return fmt.Sprintf("%d (%s)", s.GetBreaches(), strings.Join(by, ", "))
}
