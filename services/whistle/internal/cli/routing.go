package cli

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// areasCommand prints the area tree, each area indented under its parent.
func areasCommand(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "areas",
		Short: "Show the area tree: city, streets, communities, grids",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.ListAreas(ctx, &whistlev1.ListAreasRequest{})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			// The server lists parents before children, so each area's depth is known
			// by the time it is reached.
			depth := map[string]int{}
			tw := table(c.out)
			row(tw, "AREA", "LEVEL", "NAME")
			for _, a := range resp.GetAreas() {
				d := 0
				if a.GetParentId() != "" {
					d = depth[a.GetParentId()] + 1
				}
				depth[a.GetId()] = d
				row(tw, strings.Repeat("  ", d)+a.GetId(), a.GetLevel(), a.GetName())
			}
			return tw.Flush()
		}),
	}
}

// departmentsCommand prints the department directory.
func departmentsCommand(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "departments",
		Short: "List the departments that can be summoned",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.ListDepartments(ctx, &whistlev1.ListDepartmentsRequest{})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			tw := table(c.out)
			row(tw, "DEPARTMENT", "NAME")
			for _, d := range resp.GetDepartments() {
				row(tw, d.GetId(), d.GetName())
			}
			return tw.Flush()
		}),
	}
}

// categoriesCommand prints the categories with their time limits per urgency.
func categoriesCommand(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "categories",
		Short: "List issue categories and their time limits (report in / resolve) per urgency",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.ListCategories(ctx, &whistlev1.ListCategoriesRequest{})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			tw := table(c.out)
			row(tw, "CATEGORY", "NAME", "NORMAL", "URGENT", "EMERGENCY")
			policies := map[string]*whistlev1.SlaPolicy{}
			for _, k := range resp.GetCategories() {
				row(tw, k.GetId(), k.GetName(), policy(k.GetNormal()), policy(k.GetUrgent()), policy(k.GetEmergency()))
				for _, p := range []*whistlev1.SlaPolicy{k.GetNormal(), k.GetUrgent(), k.GetEmergency()} {
					policies[p.GetName()] = p
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(c.out)
			tw = table(c.out)
			row(tw, "POLICY", "TIME", "REMINDERS", "ESCALATION CHAIN")
			for _, name := range slices.Sorted(maps.Keys(policies)) {
				p := policies[name]
				row(tw, name, cmp.Or(map[bool]string{true: "working"}[p.GetWorkingTime()], "calendar"), reminders(p), chain(p))
			}
			return tw.Flush()
		}),
	}
}

// policy is an SLA policy in one cell: report-in limit / resolve limit, and the policy's name.
func policy(p *whistlev1.SlaPolicy) string {
	return limit(p.GetReportInWithin()) + " / " + limit(p.GetResolveWithin()) + " (" + p.GetName() + ")"
}

// reminders are a policy's reminders, as shares of a limit.
func reminders(p *whistlev1.SlaPolicy) string {
	var out []string
	for _, pc := range p.GetRemindAtPercent() {
		out = append(out, fmt.Sprintf("%d%%", pc))
	}
	return cmp.Or(strings.Join(out, " "), "none")
}

// chain is a policy's escalation chain: each level's wait and target, and how often it repeats.
func chain(p *whistlev1.SlaPolicy) string {
	var out []string
	for _, l := range p.GetChain() {
		level := "+" + limit(l.GetWait()) + " " + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(l.GetTarget().String(), "ESCALATION_TARGET_"), "_", "-"))
		if l.GetRepeat() > 0 {
			level += fmt.Sprintf(" ×%d", l.GetRepeat()+1)
		}
		out = append(out, level)
	}
	return cmp.Or(strings.Join(out, " → "), "none")
}

// routeCommand groups the routing commands; `route explain` is a dry run.
func routeCommand(cfg *config) *cobra.Command {
	route := &cobra.Command{
		Use:   "route",
		Short: "Ask routing about an issue without raising it",
		Args:  cobra.NoArgs,
	}
	var grid, category, urgency, issue, text, at, lat, lng string
	explain := &cobra.Command{
		Use:   "explain",
		Short: "Show each rule tried for an issue (real or hypothetical), which matched and why, and the units it summons",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			req := &whistlev1.ExplainRouteRequest{IssueId: issue, GridId: grid, CategoryId: category, Text: text}
			if issue == "" {
				if err := required("category", category); err != nil {
					return err
				}
				if grid == "" && lat == "" {
					return required("grid", grid)
				}
			}
			loc, err := parseLocation(lat, lng)
			if err != nil {
				return err
			}
			req.Location = loc
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return status.Errorf(codes.InvalidArgument, "--at: want a time like 2026-12-02T23:30:00+08:00")
				}
				req.At = timestamppb.New(t)
			}
			if req.Urgency, err = parseUrgency(urgency); err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.ExplainRoute(ctx, req)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			tw := table(c.out)
			row(tw, "outcome:", resp.GetOutcome())
			row(tw, "rule:", orDash(resp.GetRuleId()))
			row(tw, "grid:", resp.GetGridId()+" in "+resp.GetStreetId())
			row(tw, "why:", resp.GetExplanation())
			row(tw, "rules version:", resp.GetRulesVersion())
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(c.out)
			tw = table(c.out)
			row(tw, "RULE", "MATCHED", "WHY")
			for _, t := range resp.GetTrials() {
				matched := yesNo(t.GetMatched())
				if t.GetWentOn() {
					matched += ", went on"
				}
				row(tw, t.GetRuleId(), matched, t.GetReason())
			}
			if err := tw.Flush(); err != nil || len(resp.GetAssignments()) == 0 {
				return err
			}
			fmt.Fprintln(c.out)
			tw = table(c.out)
			row(tw, "UNIT", "DEPARTMENT", "ROLE", "REPORT IN", "RESOLVE")
			for _, a := range resp.GetAssignments() {
				row(tw, a.GetUnitId(), a.GetDepartmentId(), enumText(a.GetRole()), limit(a.GetPolicy().GetReportInWithin()), limit(a.GetPolicy().GetResolveWithin()))
			}
			return tw.Flush()
		}),
	}
	explain.Flags().StringVar(&issue, "issue", "", "a real issue's case number, explained as routing would route it now")
	explain.Flags().StringVar(&grid, "grid", "", "grid `id` (see: whistle areas); or give --lat and --lng")
	explain.Flags().StringVar(&lat, "lat", "", "latitude of the place, instead of --grid")
	explain.Flags().StringVar(&lng, "lng", "", "longitude of the place, instead of --grid")
	explain.Flags().StringVar(&category, "category", "", "category `id` (see: whistle categories)")
	explain.Flags().StringVar(&urgency, "urgency", "normal", "normal, urgent or emergency")
	explain.Flags().StringVar(&text, "text", "", "the raiser's words, which rules may match")
	explain.Flags().StringVar(&at, "at", "", "when it would be raised (RFC 3339); default now")
	route.AddCommand(explain)
	return route
}

// rulesCommand lists the rules in force and reloads them.
func rulesCommand(cfg *config) *cobra.Command {
	rules := &cobra.Command{Use: "rules", Short: "List the routing rules in force, or reload them", Args: cobra.NoArgs}
	rules.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the routing rules in force, in the order they are tried",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.ListRules(ctx, &whistlev1.ListRulesRequest{})
			if err != nil || c.json {
				return printIf(c, resp, err)
			}
			fmt.Fprintf(c.out, "Rules version %s, loaded %s\n\n", resp.GetRulesVersion(), when(resp.GetLoadedAt()))
			tw := table(c.out)
			row(tw, "RULE", "SUMMARY")
			for _, r := range resp.GetRules() {
				row(tw, r.GetId(), r.GetSummary())
			}
			return tw.Flush()
		}),
	}, &cobra.Command{
		Use:   "reload",
		Short: "Read the rules and catalog files again; a set that fails its checks is refused and the rules in force stay",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.ReloadRules(ctx, &whistlev1.ReloadRulesRequest{})
			if err != nil || c.json {
				return printIf(c, resp, err)
			}
			what := "unchanged"
			if resp.GetChanged() {
				what = "reloaded"
			}
			_, err = fmt.Fprintf(c.out, "Rules %s: version %s\n", what, resp.GetRulesVersion())
			return err
		}),
	})
	return rules
}

// printIf returns err, or prints resp as JSON.
func printIf(c *client, resp proto.Message, err error) error {
	if err != nil {
		return err
	}
	return printJSON(c.out, resp)
}

// parseUrgency reads --urgency; empty means normal.
func parseUrgency(s string) (whistlev1.Urgency, error) {
	if s == "" {
		return whistlev1.Urgency_URGENCY_NORMAL, nil
	}
	return parseEnum[whistlev1.Urgency]("urgency", s)
}

// yesNo is a bool for people.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// parseLocation reads --lat and --lng; nil when neither is given.
func parseLocation(lat, lng string) (*whistlev1.Location, error) {
	if lat == "" && lng == "" {
		return nil, nil
	}
	la, errLat := strconv.ParseFloat(lat, 64)
	ln, errLng := strconv.ParseFloat(lng, 64)
	if errLat != nil || errLng != nil {
		return nil, status.Errorf(codes.InvalidArgument, "--lat and --lng: want two numbers of degrees")
	}
	return &whistlev1.Location{Latitude: la, Longitude: ln}, nil
}

// deskCommand works the dispatch desk: what waits, dispatching by hand, re-assigning, changing a
// category, unlinking a duplicate.
func deskCommand(cfg *config) *cobra.Command {
	desk := &cobra.Command{Use: "desk", Short: "Work the dispatch desk: list what waits, dispatch, re-assign, recategorise, unlink", Args: cobra.NoArgs}
	var area string
	list := &cobra.Command{
		Use:   "list",
		Short: "List what waits at the desk in your scope, oldest first, with how long",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			var items []*whistlev1.DeskItem
			for token := ""; ; {
				resp, err := c.routing.ListDesk(ctx, &whistlev1.ListDeskRequest{AreaId: area, PageToken: token, PageSize: 200})
				if err != nil {
					return err
				}
				items = append(items, resp.GetItems()...)
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
			}
			if c.json {
				return printJSON(c.out, &whistlev1.ListDeskResponse{Items: items})
			}
			tw := table(c.out)
			row(tw, "CASE", "WAITING", "DISPATCH BY", "GRID", "CATEGORY", "WHY")
			for _, it := range items {
				row(tw, it.GetIssueId(), it.GetWaiting().AsDuration().Round(time.Second).String(), when(it.GetDispatchBy()),
					it.GetGridId(), it.GetCategoryId(), it.GetReason())
			}
			return tw.Flush()
		}),
	}
	list.Flags().StringVar(&area, "area", "", "only issues in this area; default your scope")
	var lead, note string
	var assisting []string
	dispatch := &cobra.Command{
		Use:   "dispatch CASE",
		Short: "Dispatch an issue waiting at the desk: --lead and --assisting departments (or units)",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if err := required("lead", lead); err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.DispatchIssue(ctx, &whistlev1.DispatchIssueRequest{IssueId: args[0], Lead: lead, Assisting: assisting, Note: note})
			if err != nil || c.json {
				return printIf(c, resp, err)
			}
			return printPlanned(c, args[0], "dispatched to", resp.GetAssignments())
		}),
	}
	dispatch.Flags().StringVar(&lead, "lead", "", "the lead department or unit")
	dispatch.Flags().StringSliceVar(&assisting, "assisting", nil, "assisting departments or units, comma-separated")
	dispatch.Flags().StringVar(&note, "note", "", "why, for the timeline")
	var reason string
	reassign := &cobra.Command{
		Use:   "reassign CASE",
		Short: "Replace the units of a routed issue: --lead, --assisting and --reason",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if err := required("lead", lead, "reason", reason); err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.ReassignIssue(ctx, &whistlev1.ReassignIssueRequest{IssueId: args[0], Lead: lead, Assisting: assisting, Reason: reason})
			if err != nil || c.json {
				return printIf(c, resp, err)
			}
			return printPlanned(c, args[0], "re-assigned to", resp.GetAssignments())
		}),
	}
	reassign.Flags().StringVar(&lead, "lead", "", "the lead department or unit")
	reassign.Flags().StringSliceVar(&assisting, "assisting", nil, "assisting departments or units, comma-separated")
	reassign.Flags().StringVar(&reason, "reason", "", "why, for the timeline")
	var category string
	recategorise := &cobra.Command{
		Use:   "recategorise CASE",
		Short: "Change an issue's category (--category, --reason); the rules route it again",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if err := required("category", category, "reason", reason); err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.ChangeCategory(ctx, &whistlev1.ChangeCategoryRequest{IssueId: args[0], CategoryId: category, Reason: reason})
			if err != nil || c.json {
				return printIf(c, resp, err)
			}
			_, err = fmt.Fprintf(c.out, "Case %s: category changed to %s; routing routes it again\n", args[0], category)
			return err
		}),
	}
	recategorise.Flags().StringVar(&category, "category", "", "the new category `id`")
	recategorise.Flags().StringVar(&reason, "reason", "", "why, for the timeline")
	unlink := &cobra.Command{
		Use:   "unlink CASE",
		Short: "Say a linked issue is not a duplicate (--reason); routing routes it as a case of its own",
		Args:  cobra.ExactArgs(1),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			if err := required("reason", reason); err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.UnlinkIssue(ctx, &whistlev1.UnlinkIssueRequest{IssueId: args[0], Reason: reason})
			if err != nil || c.json {
				return printIf(c, resp, err)
			}
			_, err = fmt.Fprintf(c.out, "Case %s: unlinked; routing routes it as a case of its own\n", args[0])
			return err
		}),
	}
	unlink.Flags().StringVar(&reason, "reason", "", "why, for the timeline")
	desk.AddCommand(list, dispatch, reassign, recategorise, unlink)
	return desk
}

// printPlanned prints the units a dispatch by hand summoned.
func printPlanned(c *client, id, what string, ps []*whistlev1.PlannedAssignment) error {
	units := make([]string, len(ps))
	for i, p := range ps {
		units[i] = p.GetUnitId() + " (" + enumText(p.GetRole()) + ")"
	}
	_, err := fmt.Fprintf(c.out, "Case %s: %s %s\n", id, what, strings.Join(units, ", "))
	return err
}
