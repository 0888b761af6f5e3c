package cli

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// raiseCommand raises an issue and prints its case number, which the raiser reads out or notes.
func raiseCommand(cfg *config) *cobra.Command {
	var grid, category, text, urgency, requestID, lat, lng, address string
	var photos []string
	cmd := &cobra.Command{
		Use:   "raise",
		Short: "Raise an issue from a grid, or from a point (blow the whistle)",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			if lat == "" && lng == "" {
				if err := required("grid", grid); err != nil {
					return err
				}
			}
			if err := required("category", category, "text", text); err != nil {
				return err
			}
			u, err := parseUrgency(urgency)
			if err != nil {
				return err
			}
			loc, err := parseLocation(lat, lng)
			if err != nil {
				return err
			}
			if loc != nil {
				loc.Address = address
			}
			if len(photos) > 0 && grid == "" {
				return invalid("--photo needs --grid: a photo is uploaded for a raise in a grid")
			}
			photoIDs, err := uploadPhotos(ctx, c, grid, "", photos)
			if err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.intake.RaiseIssue(ctx, &whistlev1.RaiseIssueRequest{
				RequestId: requestID, GridId: grid, CategoryId: category, Urgency: u, Text: text, Location: loc, PhotoIds: photoIDs,
			})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			issue := resp.GetIssue()
			fmt.Fprintf(c.out, "Case %s\n", issue.GetId())
			if resp.GetReplayed() {
				fmt.Fprintln(c.out, "(replayed: this request id had already raised the case; nothing new was written)")
			}
			fmt.Fprintln(c.out)
			return printIssue(c.out, issue)
		}),
	}
	cmd.Flags().StringVar(&grid, "grid", "", "grid `id` the issue sits in (see: whistle areas); or give --lat and --lng")
	cmd.Flags().StringVar(&lat, "lat", "", "latitude of the place (WGS-84 degrees); with --lng, instead of or beside --grid")
	cmd.Flags().StringVar(&lng, "lng", "", "longitude of the place")
	cmd.Flags().StringVar(&address, "address", "", "the address or landmark, as people say it")
	cmd.Flags().StringVar(&category, "category", "", "category `id` (see: whistle categories)")
	cmd.Flags().StringVar(&text, "text", "", "what is wrong, in your words")
	cmd.Flags().StringVar(&urgency, "urgency", "normal", "normal, urgent or emergency")
	cmd.Flags().StringVar(&requestID, "request-id", "", "idempotency key: retrying with the same key raises nothing new")
	photoFlag(cmd, &photos, "what is wrong")
	return cmd
}

// showCommand prints one issue, its assignments with their clocks, and its timeline.
func showCommand(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "show CASE",
		Short: "Show an issue, its assignments and its timeline",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.intake.GetIssue(ctx, &whistlev1.GetIssueRequest{Id: args[0]})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			fmt.Fprintf(c.out, "Case %s\n\n", resp.GetIssue().GetId())
			if err := printIssue(c.out, resp.GetIssue()); err != nil {
				return err
			}
			fmt.Fprintln(c.out)
			tw := table(c.out)
			row(tw, "SEQ", "AT", "KIND", "UNIT", "ACTOR", "SUMMARY")
			for _, e := range resp.GetTimeline() {
				row(tw, fmt.Sprint(e.GetSeq()), when(e.GetAt()), e.GetKind(), orDash(e.GetUnitId()), orDash(e.GetActor()), e.GetSummary())
			}
			return tw.Flush()
		}),
	}
}

// listCommand pages through every issue the filters select, newest first.
func listCommand(cfg *config) *cobra.Command {
	var area, statusFlag, category string
	var max int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List issues, newest first",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			req := &whistlev1.ListIssuesRequest{AreaId: area, CategoryId: category}
			if statusFlag != "" {
				s, err := parseEnum[whistlev1.IssueStatus]("status", statusFlag)
				if err != nil {
					return err
				}
				req.Status = s
			}
			if max < 0 {
				return invalid("--limit must be 0 (all) or more; got %d", max)
			}
			issues, err := allPages(ctx, max, func(ctx context.Context, size int32, token string) ([]*whistlev1.Issue, string, error) {
				req.PageSize, req.PageToken = size, token
				resp, err := c.intake.ListIssues(ctx, req)
				return resp.GetIssues(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			all := &whistlev1.ListIssuesResponse{Issues: issues}
			if c.json {
				return printJSON(c.out, all)
			}
			if len(all.Issues) == 0 {
				return say(c.out, "No issues.")
			}
			tw := table(c.out)
			row(tw, "CASE", "STATUS", "CATEGORY", "URGENCY", "GRID", "RAISED", "TEXT")
			for _, i := range all.Issues {
				row(tw, i.GetId(), enumText(i.GetStatus()), i.GetCategoryId(), enumText(i.GetUrgency()), i.GetGridId(), when(i.GetRaisedAt()), clip(i.GetText(), 40))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVar(&area, "area", "", "only issues in this area (grid, community, street or city); default your scope")
	cmd.Flags().StringVar(&statusFlag, "status", "", "only issues with this status (raised, awaiting-dispatch, dispatched, in-progress, resolved)")
	cmd.Flags().StringVar(&category, "category", "", "only issues of this category")
	cmd.Flags().IntVar(&max, "limit", 0, "at most this many issues; 0 means all")
	return cmd
}

// watchCommand follows an issue live, one line per timeline entry.
func watchCommand(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "watch CASE",
		Short: "Follow an issue live until interrupted",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			return follow(ctx, c, live[*whistlev1.WatchIssueResponse]{
				what: "case " + args[0],
				open: func(ctx context.Context) (func() (*whistlev1.WatchIssueResponse, error), error) {
					stream, err := c.intake.WatchIssue(ctx, &whistlev1.WatchIssueRequest{Id: args[0]})
					if err != nil {
						return nil, err
					}
					return stream.Recv, nil
				},
				// Each watch sends the issue's whole timeline first; an entry is news once.
				key: func(resp *whistlev1.WatchIssueResponse) string { return fmt.Sprint(resp.GetEntry().GetSeq()) },
				line: func(resp *whistlev1.WatchIssueResponse) string {
					e, i := resp.GetEntry(), resp.GetIssue()
					if e == nil { // the issue as it stood when the watch began
						return fmt.Sprintf("%s  %s  %s  %s", i.GetId(), enumText(i.GetStatus()), i.GetCategoryId(), clip(i.GetText(), 60))
					}
					return fmt.Sprintf("%s  #%d %-13s %-18s %s  -> %s", when(e.GetAt()), e.GetSeq(), e.GetKind(), orDash(e.GetUnitId()), e.GetSummary(), enumText(i.GetStatus()))
				},
			})
		}),
	}
}

// printIssue writes an issue as a key: value block followed by its assignments. A quarantined
// issue is said to be so first: what follows is the issue as it stood before the event that
// could not apply, and may be behind what happened since.
func printIssue(w io.Writer, i *whistlev1.Issue) error {
	if q := i.GetQuarantine(); q != nil {
		fmt.Fprintf(w, "%s\n\n", quarantineLine(q))
	}
	tw := table(w)
	row(tw, "status:", enumText(i.GetStatus()))
	row(tw, "category:", i.GetCategoryId()+" ("+enumText(i.GetUrgency())+")")
	row(tw, "grid:", i.GetGridId()+" ("+i.GetCommunityId()+", "+i.GetStreetId()+")")
	row(tw, "raised:", when(i.GetRaisedAt())+" by "+orDash(i.GetRaisedBy()))
	row(tw, "updated:", when(i.GetUpdatedAt()))
	if i.GetRuleId() != "" {
		row(tw, "rule:", i.GetRuleId())
	}
	row(tw, "text:", i.GetText())
	if len(i.GetPhotos()) > 0 {
		row(tw, "photos:", photoList(i.GetPhotos()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(i.GetAssignments()) == 0 {
		_, err := fmt.Fprintln(w, "No department summoned yet.")
		return err
	}
	tw = table(w)
	row(tw, "UNIT", "ROLE", "STATUS", "REPORT IN", "RESOLVE")
	for _, a := range i.GetAssignments() {
		row(tw, a.GetUnitId(), enumText(a.GetRole()), enumText(a.GetStatus()),
			clockCell(a, a.GetReportInBy(), a.GetAcknowledgedAt(), whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN),
			clockCell(a, a.GetResolveBy(), a.GetResolvedAt(), whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range i.GetAssignments() {
		if len(a.GetPhotos()) > 0 {
			if _, err := fmt.Fprintf(w, "%s resolved with photos: %s\n", a.GetUnitId(), photoList(a.GetPhotos())); err != nil {
				return err
			}
		}
	}
	return supervisionLines(w, i)
}

// clockCell is one of an assignment's clocks: how far off its deadline is, or when it was
// met, marked when the deadline was breached.
func clockCell(a *whistlev1.Assignment, by, done *timestamppb.Timestamp, kind whistlev1.DeadlineKind) string {
	s := deadline(by)
	if done != nil {
		s = "done " + when(done)
	}
	if slices.Contains(a.GetBreached(), kind) {
		s += " (breached)"
	}
	return s
}
