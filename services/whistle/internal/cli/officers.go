package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// officerCommands are a duty officer's actions beyond reporting in, resolving and returning, the
// grid worker's verification and the raiser's rating, and the rosters.
func officerCommands(cfg *config) []*cobra.Command {
	return []*cobra.Command{handOverCommand(cfg), noteCommand(cfg), extendCommand(cfg), verifyCommand(cfg), rateCommand(cfg), rosterCommand(cfg)}
}

// handOverCommand gives the unit's assignment to a colleague.
func handOverCommand(cfg *config) *cobra.Command {
	var unit, to, note string
	cmd := &cobra.Command{
		Use:   "handover CASE --to OFFICER",
		Short: "Hand your unit's assignment over to a colleague of the unit",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if err := required("to", to); err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.department.HandOver(ctx, &whistlev1.HandOverRequest{IssueId: args[0], UnitId: unit, ToOfficerId: to, Note: note})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			_, err = fmt.Fprintf(c.out, "Case %s: %s's part is now %s's\n", args[0], resp.GetAssignment().GetUnitId(), resp.GetAssignment().GetOfficerId())
			return err
		}),
	}
	unitFlag(cmd, &unit)
	cmd.Flags().StringVar(&to, "to", "", "the colleague's officer id")
	cmd.Flags().StringVar(&note, "note", "", "what the colleague needs to know")
	return cmd
}

// noteCommand records progress on the unit's assignment.
func noteCommand(cfg *config) *cobra.Command {
	var unit, requestID string
	cmd := &cobra.Command{
		Use:   "note CASE TEXT",
		Short: "Record progress on your unit's assignment",
		Args:  cobra.ExactArgs(2),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.department.AddNote(ctx, &whistlev1.AddNoteRequest{IssueId: args[0], UnitId: unit, Note: args[1], RequestId: requestID})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			_, err = fmt.Fprintf(c.out, "Case %s: note recorded for %s\n", args[0], resp.GetAssignment().GetUnitId())
			return err
		}),
	}
	unitFlag(cmd, &unit)
	cmd.Flags().StringVar(&requestID, "request-id", "", "idempotency key: a retry with the same key records the note once")
	return cmd
}

// extendCommand asks for a later deadline.
func extendCommand(cfg *config) *cobra.Command {
	var unit, to, reason string
	var reportIn bool
	cmd := &cobra.Command{
		Use:   "extend CASE --to TIME --reason TEXT",
		Short: "Ask, before the deadline, for a later one (a supervisor decides)",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if err := required("to", to, "reason", reason); err != nil {
				return err
			}
			proposed, err := parseInstant(to)
			if err != nil {
				return invalid("--to: %v", err)
			}
			kind := whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE
			if reportIn {
				kind = whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.department.RequestExtension(ctx, &whistlev1.RequestExtensionRequest{
				IssueId: args[0], UnitId: unit, Kind: kind, Proposed: timestamppb.New(proposed), Reason: reason})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			e := resp.GetAssignment().GetExtensionRequested()
			_, err = fmt.Fprintf(c.out, "Case %s: %s asks to move its %s deadline to %s; a supervisor decides\n", args[0],
				resp.GetAssignment().GetUnitId(), enumText(e.GetKind()), when(e.GetProposed()))
			return err
		}),
	}
	unitFlag(cmd, &unit)
	cmd.Flags().StringVar(&to, "to", "", "the new deadline: a time like 2026-12-04T18:00:00+08:00, or a duration from now like 48h")
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	cmd.Flags().BoolVar(&reportIn, "report-in", false, "the report-in deadline instead of the resolve deadline")
	return cmd
}

// parseInstant reads a time (RFC 3339) or a duration from now.
func parseInstant(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now().Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("want a time like 2026-12-04T18:00:00+08:00 or a duration like 48h, not %q", v)
	}
	return t, nil
}

// verifyCommand records the grid worker's check on site.
func verifyCommand(cfg *config) *cobra.Command {
	var pass, fail bool
	var reason string
	cmd := &cobra.Command{
		Use:   "verify CASE --pass | --fail --reason TEXT",
		Short: "Verify a resolved issue on site: pass closes it, fail reopens the lead's part",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if pass == fail {
				return invalid("give one of --pass and --fail")
			}
			if fail {
				if err := required("reason", reason); err != nil {
					return err
				}
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.intake.VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: args[0], Passed: pass, Reason: reason})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			_, err = fmt.Fprintf(c.out, "Case %s: %s\n", args[0], enumText(resp.GetIssue().GetStatus()))
			return err
		}),
	}
	cmd.Flags().BoolVar(&pass, "pass", false, "the issue was dealt with")
	cmd.Flags().BoolVar(&fail, "fail", false, "it was not: the lead's part reopens")
	cmd.Flags().StringVar(&reason, "reason", "", "what was seen (required with --fail)")
	return cmd
}

// rateCommand records the raiser's rating.
func rateCommand(cfg *config) *cobra.Command {
	var score int
	var comment string
	var reopen bool
	cmd := &cobra.Command{
		Use:   "rate CASE --score 1-5",
		Short: "Rate how your issue was handled; an unsatisfied rating may reopen it once (--reopen)",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.intake.RateIssue(ctx, &whistlev1.RateIssueRequest{IssueId: args[0], Score: int32(score), Comment: comment, Reopen: reopen})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			_, err = fmt.Fprintf(c.out, "Case %s: rated %d of 5; %s\n", args[0], score, enumText(resp.GetIssue().GetStatus()))
			return err
		}),
	}
	cmd.Flags().IntVar(&score, "score", 0, "1 (very unsatisfied) to 5 (very satisfied)")
	cmd.Flags().StringVar(&comment, "comment", "", "what you say")
	cmd.Flags().BoolVar(&reopen, "reopen", false, "reopen the issue (a score of 1 or 2; once)")
	return cmd
}

// rosterCommand shows who is on duty.
func rosterCommand(cfg *config) *cobra.Command {
	cmd := &cobra.Command{Use: "roster", Short: "Who is on duty in a unit, now or at a time, and the gaps ahead"}
	var unit, at, from, to string
	who := &cobra.Command{
		Use:   "who",
		Short: "Who is on duty in a unit (now, or --at TIME)",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			req := &whistlev1.WhoIsOnDutyRequest{UnitId: unit}
			if at != "" {
				t, err := parseInstant(at)
				if err != nil {
					return invalid("--at: %v", err)
				}
				req.At = timestamppb.New(t)
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.department.WhoIsOnDuty(ctx, req)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			if !resp.GetHasRoster() {
				_, err = fmt.Fprintf(c.out, "%s has no roster: its inbox alone holds its assignments\n", resp.GetUnitId())
				return err
			}
			if len(resp.GetOnDuty()) == 0 {
				_, err = fmt.Fprintf(c.out, "%s: nobody on duty until %s; what lands goes to the head, %s\n", resp.GetUnitId(), when(resp.GetUntil()), person(resp.GetHead()))
				return err
			}
			_, err = fmt.Fprintf(c.out, "%s: %s on %s until %s (head %s)\n", resp.GetUnitId(), people(resp.GetOnDuty()), resp.GetShift(), when(resp.GetUntil()), person(resp.GetHead()))
			return err
		}),
	}
	who.Flags().StringVar(&unit, "unit", "", "the unit; default your own")
	who.Flags().StringVar(&at, "at", "", "a time like 2026-12-04T18:00:00+08:00, or a duration from now like 12h")
	duty := &cobra.Command{
		Use:   "duty",
		Short: "A unit's duty shift by shift (default the next 7 days); without --unit, the units with a gap",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			req := &whistlev1.ListDutyRequest{UnitId: unit}
			for _, f := range []struct {
				flag, v string
				ts      **timestamppb.Timestamp
			}{{"from", from, &req.From}, {"to", to, &req.To}} {
				if f.v == "" {
					continue
				}
				t, err := parseInstant(f.v)
				if err != nil {
					return invalid("--%s: %v", f.flag, err)
				}
				*f.ts = timestamppb.New(t)
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.department.ListDuty(ctx, req)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			for _, d := range resp.GetDuties() {
				who := people(d.GetOnDuty())
				if who == "" {
					who = "NOBODY (the head receives)"
				}
				if _, err := fmt.Fprintf(c.out, "%-28s %s - %s  %-10s %s\n", d.GetUnitId(), when(d.GetFrom()), when(d.GetTo()), d.GetShift(), who); err != nil {
					return err
				}
			}
			if len(resp.GetFlaggedUnits()) > 0 {
				_, err = fmt.Fprintf(c.out, "flagged (nobody on duty at some time): %s\n", strings.Join(resp.GetFlaggedUnits(), ", "))
			}
			return err
		}),
	}
	duty.Flags().StringVar(&unit, "unit", "", "the unit; empty lists every unit's gaps")
	duty.Flags().StringVar(&from, "from", "", "the start (default now)")
	duty.Flags().StringVar(&to, "to", "", "the end (default 7 days after the start)")
	cmd.AddCommand(who, duty)
	return cmd
}

// person names an officer.
func person(o *whistlev1.Officer) string {
	if o.GetName() == "" {
		return o.GetId()
	}
	return o.GetName() + " (" + o.GetId() + ")"
}

// people names officers.
func people(os []*whistlev1.Officer) string {
	names := make([]string, 0, len(os))
	for _, o := range os {
		names = append(names, person(o))
	}
	return strings.Join(names, ", ")
}
