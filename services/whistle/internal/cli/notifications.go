package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// notificationsCommand lists the notifications sent or to be sent about issues, newest first,
// with how each delivery went, so a supervisor can see who was told what and which receiver fails.
func notificationsCommand(cfg *config) *cobra.Command {
	var issue, statusText string
	var pageSize int
	cmd := &cobra.Command{
		Use:   "notifications",
		Short: "Show notifications to officers and raisers, newest first, with every attempt at delivering each",
		Long: "Show the notifications the department queued (to the duty officer an assignment was pushed to, and\n" +
			"to the raiser of each change of their issue), newest first: where each delivery stands and how its\n" +
			"last attempt went; --json shows every attempt's answer, error and duration. A supervisor sees\n" +
			"those of their area.",
		Args: cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			if pageSize < 1 || pageSize > maxPage {
				return invalid("--page-size must be 1 to %d; got %d", maxPage, pageSize)
			}
			req := &whistlev1.ListNotificationsRequest{IssueId: issue, PageSize: int32(pageSize)}
			if statusText != "" {
				st, err := parseEnum[whistlev1.NotificationStatus]("status", statusText)
				if err != nil {
					return err
				}
				req.Status = st
			}
			pctx, cancel := unary(ctx)
			resp, err := c.department.ListNotifications(pctx, req)
			cancel()
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			if len(resp.GetNotifications()) == 0 {
				return say(c.out, "No notifications.")
			}
			tw := table(c.out)
			row(tw, "CASE", "EVENT", "TO", "ROLE", "STATUS", "ATTEMPTS", "LAST", "NEXT", "TEXT")
			for _, n := range resp.GetNotifications() {
				last := "-"
				if as := n.GetAttempts(); len(as) > 0 {
					last = attemptText(as[len(as)-1])
				}
				row(tw, n.GetIssueId(), fmt.Sprintf("%s #%d", n.GetEventKind(), n.GetEventSeq()), n.GetRecipientId(),
					n.GetRecipientRole(), enumText(n.GetStatus()), fmt.Sprint(len(n.GetAttempts())), last,
					when(n.GetNextAttemptAt()), clip(n.GetTextEn(), 60))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVar(&issue, "issue", "", "only this case's notifications")
	cmd.Flags().StringVar(&statusText, "status", "", "only those pending, delivered or failed")
	cmd.Flags().IntVar(&pageSize, "page-size", 50, fmt.Sprintf("how many, newest first, 1 to %d", maxPage))
	return cmd
}

// attemptText is one attempt's outcome: the receiver's answer or the error, and how long it took.
func attemptText(a *whistlev1.NotificationAttempt) string {
	what := fmt.Sprint(a.GetCode())
	if a.GetError() != "" {
		what = clip(a.GetError(), 40)
	}
	return fmt.Sprintf("%s in %s", what, a.GetDuration().AsDuration().Round(1e6))
}
