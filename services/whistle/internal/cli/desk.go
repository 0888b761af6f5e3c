package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// inboxCommand lists a department's assignments, or with --watch follows them live.
func inboxCommand(cfg *config) *cobra.Command {
	var dept, statusFlag string
	var watch bool
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "Show a department's assignments (default: your department's open ones)",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			if watch {
				return watchInbox(ctx, c, dept)
			}
			req := &whistlev1.ListInboxRequest{UnitId: dept}
			if statusFlag != "open" && statusFlag != "" {
				s, err := parseEnum[whistlev1.AssignmentStatus]("status", statusFlag)
				if err != nil {
					return err
				}
				req.Status = s
			}
			items, err := allPages(ctx, 0, func(ctx context.Context, size int32, token string) ([]*whistlev1.InboxItem, string, error) {
				req.PageSize, req.PageToken = size, token
				resp, err := c.department.ListInbox(ctx, req)
				return resp.GetItems(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			all := &whistlev1.ListInboxResponse{Items: items}
			if c.json {
				return printJSON(c.out, all)
			}
			if len(all.Items) == 0 {
				which := "open"
				if req.Status != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_UNSPECIFIED {
					which = enumText(req.Status)
				}
				return say(c.out, "No "+which+" assignments in the inbox.")
			}
			tw := table(c.out)
			row(tw, inboxHead...)
			for _, it := range all.Items {
				row(tw, inboxCells(it)...)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, it := range all.Items {
				if q := it.GetQuarantine(); q != nil {
					fmt.Fprintf(c.out, "\nCase %s: %s\n", it.GetIssueId(), quarantineLine(q))
				}
			}
			return nil
		}),
	}
	unitFlag(cmd, &dept)
	cmd.Flags().StringVar(&statusFlag, "status", "open", "open, dispatched, acknowledged or resolved")
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the inbox live until interrupted")
	return cmd
}

// watchInbox prints the inbox as it stands, then each change, one line per item. A reconnect
// resumes after the last position received (of a change, or of the bookmark that follows the
// inbox as it stood), so the server sends only what changed meanwhile, each change once. When the
// server no longer holds that position it starts again from the inbox as it stands, and an item
// is shown again only when it changed (its issue's last event is a later one).
func watchInbox(ctx context.Context, c *client, dept string) error {
	var position string // the last position received
	return follow(ctx, c, live[*whistlev1.WatchInboxResponse]{
		what: "the inbox",
		open: func(ctx context.Context) (func() (*whistlev1.WatchInboxResponse, error), error) {
			stream, err := c.department.WatchInbox(ctx, &whistlev1.WatchInboxRequest{UnitId: dept, After: position})
			if err != nil {
				return nil, err
			}
			return func() (*whistlev1.WatchInboxResponse, error) {
				for {
					resp, err := stream.Recv()
					if status.Code(err) == codes.OutOfRange && position != "" {
						fmt.Fprintln(c.errOut, "The server no longer holds where the inbox was left; showing it as it stands.")
						position = ""
						if stream, err = c.department.WatchInbox(ctx, &whistlev1.WatchInboxRequest{UnitId: dept}); err != nil {
							return nil, err
						}
						continue
					}
					if err != nil {
						return nil, err
					}
					if resp.GetPosition() != "" {
						position = resp.GetPosition()
					}
					if resp.GetItem() != nil { // not the bookmark, which only marks a position
						return resp, nil
					}
				}
			}, nil
		},
		key: func(resp *whistlev1.WatchInboxResponse) string {
			return fmt.Sprintf("%s@%d", resp.GetItem().GetIssueId(), resp.GetItem().GetSeq())
		},
		line: func(resp *whistlev1.WatchInboxResponse) string {
			return cellLine(padded(inboxCells(resp.GetItem()), inboxWidths))
		},
		head: padded(inboxHead, inboxWidths),
	})
}

// The inbox's columns, and the widths that keep a live inbox's lines aligned under them.
var (
	inboxHead   = []string{"CASE", "STATUS", "ROLE", "CATEGORY", "URGENCY", "GRID", "DEADLINE", "TEXT"}
	inboxWidths = []int{9, 12, 9, 16, 9, 17, 28, 0}
)

// inboxCells is one inbox item as table cells. The deadline shown is the one the department
// must meet next: reporting in until it has, then resolving. A quarantined item's status reads
// QUARANTINED, since the department's view of it stopped at an event it could not apply.
func inboxCells(it *whistlev1.InboxItem) []string {
	a := it.GetAssignment()
	next := "-"
	switch a.GetStatus() {
	case whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED:
		next = "report in: " + deadline(a.GetReportInBy())
	case whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED:
		next = "resolve: " + deadline(a.GetResolveBy())
	case whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED:
		next = "done " + when(a.GetResolvedAt())
	}
	state := enumText(a.GetStatus())
	if it.GetQuarantine() != nil {
		// The department stopped applying the issue's events: its status may be behind.
		state = "QUARANTINED"
	}
	return []string{it.GetIssueId(), state, enumText(a.GetRole()), it.GetCategoryId(),
		enumText(it.GetUrgency()), it.GetGridId(), next, clip(it.GetText(), 40)}
}

// ackCommand reports in for the department's assignment on an issue.
func ackCommand(cfg *config) *cobra.Command {
	var dept string
	cmd := &cobra.Command{
		Use:   "ack CASE",
		Short: "Report in (acknowledge) for your department's assignment",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.department.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: args[0], UnitId: dept})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			a := resp.GetAssignment()
			_, err = fmt.Fprintf(c.out, "Case %s: %s %s, resolve %s (by %s)\n", args[0], a.GetUnitId(),
				enumText(a.GetStatus()), deadline(a.GetResolveBy()), when(a.GetResolveBy()))
			return err
		}),
	}
	unitFlag(cmd, &dept)
	return cmd
}

// resolveCommand closes the department's part of an issue with a note.
func resolveCommand(cfg *config) *cobra.Command {
	var dept, note string
	var photos []string
	cmd := &cobra.Command{
		Use:   "resolve CASE",
		Short: "Resolve your department's part of an issue",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if err := required("note", note); err != nil {
				return err
			}
			photoIDs, err := uploadPhotos(ctx, c, "", args[0], photos)
			if err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.department.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: args[0], UnitId: dept, Note: note, PhotoIds: photoIDs})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			a := resp.GetAssignment()
			_, err = fmt.Fprintf(c.out, "Case %s: %s %s at %s\n", args[0], a.GetUnitId(), enumText(a.GetStatus()), when(a.GetResolvedAt()))
			return err
		}),
	}
	unitFlag(cmd, &dept)
	cmd.Flags().StringVar(&note, "note", "", "what was done")
	photoFlag(cmd, &photos, "the result")
	return cmd
}

// breachesCommand lists deadlines that passed, newest first, or with --watch follows them.
func breachesCommand(cfg *config) *cobra.Command {
	var dept, area, from, until string
	var level int32
	var watch bool
	cmd := &cobra.Command{
		Use:   "breaches",
		Short: "Show deadlines that passed without the department acting",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			if watch {
				if level != 0 || from != "" || until != "" {
					return invalid("--watch follows every breach of the scope: --level, --from and --until are for the list")
				}
				return watchBreaches(ctx, c, dept, area)
			}
			req := &whistlev1.ListBreachesRequest{DepartmentId: dept, AreaId: area, MinLevel: level}
			for _, b := range []struct {
				flag, value string
				ts          **timestamppb.Timestamp
			}{{"from", from, &req.From}, {"until", until, &req.Until}} {
				if b.value == "" {
					continue
				}
				t, err := parseInstant(b.value)
				if err != nil {
					return invalid("--%s: %v", b.flag, err)
				}
				*b.ts = timestamppb.New(t)
			}
			breaches, err := allPages(ctx, 0, func(ctx context.Context, size int32, token string) ([]*whistlev1.Breach, string, error) {
				req.PageSize, req.PageToken = size, token
				resp, err := c.escalation.ListBreaches(ctx, req)
				return resp.GetBreaches(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			all := &whistlev1.ListBreachesResponse{Breaches: breaches}
			if c.json {
				return printJSON(c.out, all)
			}
			if len(all.Breaches) == 0 {
				return say(c.out, "No breaches.")
			}
			tw := table(c.out)
			row(tw, breachHead...)
			for _, b := range all.Breaches {
				row(tw, breachCells(b)...)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVar(&dept, "dept", "", "only this department's (or unit's) breaches")
	cmd.Flags().StringVar(&area, "area", "", "only breaches in this area; default your scope")
	cmd.Flags().Int32Var(&level, "level", 0, "only breaches whose escalation chain reached at least this level")
	cmd.Flags().StringVar(&from, "from", "", "only breaches recorded at or after this time: like 2026-12-01T00:00:00+08:00, or a duration from now like -24h")
	cmd.Flags().StringVar(&until, "until", "", "only breaches recorded before this time, written as --from")
	cmd.Flags().BoolVar(&watch, "watch", false, "follow breaches live until interrupted")
	return cmd
}

// watchBreaches prints each breach as it happens, in the columns of the breach list. A reconnect
// resumes after the last position received (of a breach, or, before any, the one the server
// named when the watch began), so none recorded while the stream was down is missed and none is
// shown twice. When the server no longer holds that position, it resumes after the stream
// sequence of the last breach shown, which recovers what the scope's feed still holds.
func watchBreaches(ctx context.Context, c *client, dept, area string) error {
	var position string // the last position received
	var last uint64     // the stream sequence of the last breach shown, or the one the watch began after
	return follow(ctx, c, live[*whistlev1.WatchBreachesResponse]{
		what: "for breaches",
		open: func(ctx context.Context) (func() (*whistlev1.WatchBreachesResponse, error), error) {
			watch := func() (whistlev1.EscalationService_WatchBreachesClient, error) {
				req := &whistlev1.WatchBreachesRequest{DepartmentId: dept, AreaId: area, After: position}
				if position == "" {
					req.AfterSeq = last
				}
				stream, err := c.escalation.WatchBreaches(ctx, req)
				if err != nil {
					return nil, err
				}
				// The headers say where the server follows from: a watch that has received
				// nothing yet resumes from there.
				if md, err := stream.Header(); err == nil {
					if v := md.Get(watchPositionHeader); len(v) == 1 && position == "" {
						position = v[0]
					}
					if v := md.Get(watchAfterHeader); len(v) == 1 && last == 0 {
						last, _ = strconv.ParseUint(v[0], 10, 64)
					}
				}
				return stream, nil
			}
			stream, err := watch()
			if err != nil {
				return nil, err
			}
			return func() (*whistlev1.WatchBreachesResponse, error) {
				for {
					resp, err := stream.Recv()
					if status.Code(err) == codes.OutOfRange && position != "" {
						fmt.Fprintln(c.errOut, "The server no longer holds where the watch was left; resuming after the last breach shown.")
						position = ""
						if stream, err = watch(); err != nil {
							return nil, err
						}
						continue
					}
					if err == nil {
						position = resp.GetPosition()
						last = max(last, resp.GetBreach().GetSeq())
					}
					return resp, err
				}
			}, nil
		},
		key: func(resp *whistlev1.WatchBreachesResponse) string {
			b := resp.GetBreach()
			return b.GetIssueId() + "/" + b.GetUnitId() + "/" + b.GetKind().String()
		},
		line: func(resp *whistlev1.WatchBreachesResponse) string {
			return cellLine(padded(breachCells(resp.GetBreach()), breachWidths))
		},
		head: padded(breachHead, breachWidths),
	})
}

// The response headers in which WatchBreaches names where it follows from: the stream sequence,
// and the position in the feed of the watched scope.
const (
	watchAfterHeader    = "whistle-watch-after"
	watchPositionHeader = "whistle-watch-position"
)

// The breach list's columns, and the widths that keep a live list's lines aligned under them.
var (
	breachHead   = []string{"BREACHED", "CASE", "UNIT", "DEADLINE", "WAS DUE", "GRID", "CATEGORY"}
	breachWidths = []int{19, 9, 16, 9, 19, 17, 0}
)

// breachCells is one breach as table cells.
func breachCells(b *whistlev1.Breach) []string {
	return []string{when(b.GetBreachedAt()), b.GetIssueId(), b.GetUnitId(), enumText(b.GetKind()),
		when(b.GetDeadline()), b.GetGridId(), b.GetCategoryId()}
}

// unitFlag adds --unit, the unit an officer's command or inbox is for, and --dept, its name from
// before departments had units.
func unitFlag(cmd *cobra.Command, unit *string) {
	cmd.Flags().StringVar(unit, "unit", "", "unit id; default your own (a department without units has one, with its id)")
	cmd.Flags().StringVar(unit, "dept", "", "the unit id")
	_ = cmd.Flags().MarkDeprecated("dept", "use --unit") // the flag was just added: it exists
}

// returnCommand gives the unit's assignment back (退单) with a reason.
func returnCommand(cfg *config) *cobra.Command {
	var unit, reason string
	cmd := &cobra.Command{
		Use:   "return CASE",
		Short: "Return your unit's assignment: not yours (--reason); a grid worker returns a grid matter as beyond the grid",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if err := required("reason", reason); err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.department.ReturnAssignment(ctx, &whistlev1.ReturnAssignmentRequest{IssueId: args[0], UnitId: unit, Reason: reason})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			_, err = fmt.Fprintf(c.out, "Case %s: %s %s; routing sends it on\n", args[0], resp.GetAssignment().GetUnitId(), enumText(resp.GetAssignment().GetStatus()))
			return err
		}),
	}
	unitFlag(cmd, &unit)
	cmd.Flags().StringVar(&reason, "reason", "", "why it is not your unit's")
	return cmd
}
