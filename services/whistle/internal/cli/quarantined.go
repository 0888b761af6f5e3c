package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// quarantinedCommand lists the events a service could never apply, newest first: each one
// stopped its issue's view in that service, so a supervisor sees here which issues' views
// are stale and why.
func quarantinedCommand(cfg *config) *cobra.Command {
	var pageSize int
	cmd := &cobra.Command{
		Use:   "quarantined",
		Short: "Show events a service could never apply, which stopped their issue's view in it",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			if pageSize < 1 || pageSize > maxPage {
				return invalid("--page-size must be 1 to %d; got %d", maxPage, pageSize)
			}
			req := &whistlev1.ListQuarantinedRequest{PageSize: int32(pageSize)}
			var events []*whistlev1.QuarantinedEvent
			for {
				pctx, cancel := unary(ctx)
				resp, err := c.escalation.ListQuarantined(pctx, req)
				cancel()
				if err != nil {
					return err
				}
				events = append(events, resp.GetEvents()...)
				if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
					break
				}
			}
			all := &whistlev1.ListQuarantinedResponse{Events: events}
			if c.json {
				return printJSON(c.out, all)
			}
			if len(all.Events) == 0 {
				return say(c.out, "No quarantined events.")
			}
			tw := table(c.out)
			row(tw, "SERVICE", "CASE", "SEQ", "STORED", "DELIVERIES", "REASON")
			for _, ev := range all.Events {
				row(tw, orDash(ev.GetService()), orDash(ev.GetIssueId()), fmt.Sprint(ev.GetSeq()), when(ev.GetStoredAt()),
					fmt.Sprint(ev.GetDeliveries()), orDash(ev.GetReason()))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().IntVar(&pageSize, "page-size", maxPage, fmt.Sprintf("events to fetch per call, 1 to %d; all pages are shown", maxPage))
	return cmd
}

// quarantineLine says why a service's view of an issue stopped: the event it could never apply,
// and how many of the issue's later events it holds unapplied because of it.
func quarantineLine(q *whistlev1.Quarantine) string {
	held := fmt.Sprintf("%d later events held", q.GetHeld())
	if q.GetHeld() == 1 {
		held = "1 later event held"
	}
	return fmt.Sprintf("Quarantined: event %d (%s) could not apply: %s; %s", q.GetSeq(), q.GetSubject(), q.GetReason(), held)
}
