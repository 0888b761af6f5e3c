package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// supervisionCommands are a supervisor's actions on a part of an issue (督办): urging it, and
// deciding the extension its unit asked for; and the list of the requests waiting for that.
func supervisionCommands(cfg *config) []*cobra.Command {
	return []*cobra.Command{urgeCommand(cfg), extensionCommand(cfg), extensionsCommand(cfg)}
}

// extensionsCommand lists the extension requests that wait for a supervisor's decision.
func extensionsCommand(cfg *config) *cobra.Command {
	var dept, area string
	cmd := &cobra.Command{
		Use:   "extensions",
		Short: "Show the extension requests waiting for a decision, oldest first, as a supervisor",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			req := &whistlev1.ListExtensionRequestsRequest{DepartmentId: dept, AreaId: area}
			pending, err := allPages(ctx, 0, func(ctx context.Context, size int32, token string) ([]*whistlev1.PendingExtension, string, error) {
				req.PageSize, req.PageToken = size, token
				resp, err := c.escalation.ListExtensionRequests(ctx, req)
				return resp.GetRequests(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			all := &whistlev1.ListExtensionRequestsResponse{Requests: pending}
			if c.json {
				return printJSON(c.out, all)
			}
			if len(pending) == 0 {
				return say(c.out, "No extension request waits for a decision.")
			}
			tw := table(c.out)
			row(tw, "ASKED", "CASE", "UNIT", "DEADLINE", "DUE", "PROPOSED", "BY", "GRID", "REASON")
			for _, x := range pending {
				kind := enumText(x.GetKind())
				if x.GetBreached() {
					kind += " (breached)"
				}
				row(tw, when(x.GetRequestedAt()), x.GetIssueId(), x.GetUnitId(), kind, when(x.GetDeadline()), when(x.GetProposed()),
					x.GetRequestedBy(), x.GetGridId(), clip(x.GetReason(), 60))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVar(&dept, "dept", "", "only this department's (or unit's) requests")
	cmd.Flags().StringVar(&area, "area", "", "only requests on issues in this area; default your scope")
	return cmd
}

// urgeCommand urges a part of an issue.
func urgeCommand(cfg *config) *cobra.Command {
	var unit, note, requestID string
	cmd := &cobra.Command{
		Use:   "urge CASE --note TEXT",
		Short: "Urge a unit's open part of an issue (督办), as a supervisor; the lead's unless --unit names another",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if err := required("note", note); err != nil {
				return err
			}
			if requestID == "" {
				requestID = newRequestID()
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.escalation.Urge(ctx, &whistlev1.UrgeRequest{IssueId: args[0], UnitId: unit, Note: note, RequestId: requestID})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			a := resp.GetAssignment()
			_, err = fmt.Fprintf(c.out, "Case %s: %s urged (%d in all)\n", args[0], a.GetUnitId(), a.GetUrges())
			return err
		}),
	}
	cmd.Flags().StringVar(&unit, "unit", "", "the unit urged; default the lead")
	cmd.Flags().StringVar(&note, "note", "", "what the supervisor asks")
	cmd.Flags().StringVar(&requestID, "request-id", "", "idempotency key: a retry with the same key urges once (default a new key each time)")
	return cmd
}

// extensionCommand groups a supervisor's work on extension requests.
func extensionCommand(cfg *config) *cobra.Command {
	cmd := &cobra.Command{Use: "extension", Short: "Decide the extensions units ask for, as a supervisor", Args: cobra.NoArgs}
	cmd.AddCommand(decideCommand(cfg))
	return cmd
}

// decideCommand approves or denies a unit's pending extension request.
func decideCommand(cfg *config) *cobra.Command {
	var unit, until, reason, requestID string
	var approve, deny bool
	cmd := &cobra.Command{
		Use:   "decide CASE --unit UNIT (--approve [--until TIME] | --deny --reason TEXT)",
		Short: "Approve (moving the deadline) or deny a unit's pending extension request",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if approve == deny {
				return invalid("give one of --approve and --deny")
			}
			if err := required("unit", unit); err != nil {
				return err
			}
			if requestID == "" {
				requestID = newRequestID()
			}
			req := &whistlev1.DecideExtensionRequest{IssueId: args[0], UnitId: unit, Approve: approve, Reason: reason, RequestId: requestID}
			switch {
			case deny && until != "":
				return invalid("--until goes with --approve: a denial moves no deadline")
			case deny:
				if err := required("reason", reason); err != nil {
					return err
				}
			case until != "":
				t, err := parseInstant(until)
				if err != nil {
					return invalid("--until: %v", err)
				}
				req.Granted = timestamppb.New(t)
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.escalation.DecideExtension(ctx, req)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			return printDecision(c.out, args[0], resp.GetAssignment())
		}),
	}
	cmd.Flags().StringVar(&unit, "unit", "", "the unit that asked")
	cmd.Flags().BoolVar(&approve, "approve", false, "approve: the deadline moves")
	cmd.Flags().BoolVar(&deny, "deny", false, "deny: the deadline stands (needs --reason)")
	cmd.Flags().StringVar(&until, "until", "", "with --approve, the deadline granted: a time like 2026-12-04T18:00:00+08:00 or a duration from now like 48h; default the one the unit proposed")
	cmd.Flags().StringVar(&reason, "reason", "", "why; required with --deny")
	cmd.Flags().StringVar(&requestID, "request-id", "", "idempotency key: a retry with the same key answers the decision it made, even once the unit has asked again (default a new key each time)")
	return cmd
}

// printDecision says what a decision did to a part's deadline.
func printDecision(w io.Writer, id string, a *whistlev1.Assignment) error {
	d := a.GetExtensionDecided()
	by := a.GetResolveBy()
	if d.GetKind() == whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN {
		by = a.GetReportInBy()
	}
	var err error
	if d.GetApproved() {
		_, err = fmt.Fprintf(w, "Case %s: %s's %s deadline moved to %s\n", id, a.GetUnitId(), enumText(d.GetKind()), when(by))
	} else {
		_, err = fmt.Fprintf(w, "Case %s: %s's extension not granted (%s); the %s deadline stands at %s\n", id, a.GetUnitId(),
			d.GetReason(), enumText(d.GetKind()), when(by))
	}
	return err
}

// supervisionLines are what the supervisors did to each part of an issue, and what waits for
// them, for the issue's page.
func supervisionLines(w io.Writer, i *whistlev1.Issue) error {
	for _, a := range i.GetAssignments() {
		var lines []string
		if e := a.GetExtensionRequested(); e != nil {
			lines = append(lines, fmt.Sprintf("%s asks to move its %s deadline to %s: %s", a.GetUnitId(), enumText(e.GetKind()), when(e.GetProposed()), e.GetReason()))
		}
		if d := a.GetExtensionDecided(); d != nil {
			what := "denied"
			if d.GetApproved() {
				what = "approved to " + when(d.GetGranted())
			}
			lines = append(lines, fmt.Sprintf("%s's %s extension %s by %s%s", a.GetUnitId(), enumText(d.GetKind()), what, d.GetDecidedBy(), colon(d.GetReason())))
		}
		if n := a.GetUrges(); n > 0 {
			lines = append(lines, fmt.Sprintf("%s urged %s", a.GetUnitId(), howOften(n)))
		}
		for _, l := range lines {
			if _, err := fmt.Fprintln(w, l); err != nil {
				return err
			}
		}
	}
	return nil
}

// colon is ": s", or nothing when s is empty.
func colon(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// howOften says how many times: "once", "2 times".
func howOften(n int32) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// newRequestID is an idempotency key for a command run once.
func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return "cli-" + hex.EncodeToString(b)
}
