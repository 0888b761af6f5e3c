package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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
			for _, k := range resp.GetCategories() {
				row(tw, k.GetId(), k.GetName(), policy(k.GetNormal()), policy(k.GetUrgent()), policy(k.GetEmergency()))
			}
			return tw.Flush()
		}),
	}
}

// policy is an SLA policy in one cell: report-in limit / resolve limit.
func policy(p *whistlev1.SlaPolicy) string {
	return limit(p.GetReportInWithin()) + " / " + limit(p.GetResolveWithin())
}

// routeCommand groups the routing commands; `route explain` is a dry run.
func routeCommand(cfg *config) *cobra.Command {
	route := &cobra.Command{
		Use:   "route",
		Short: "Ask routing about an issue without raising it",
		Args:  cobra.NoArgs,
	}
	var grid, category, urgency string
	explain := &cobra.Command{
		Use:   "explain",
		Short: "Show which departments an issue would be sent to, and why",
		Args:  cobra.NoArgs,
		RunE: cfg.run(func(ctx context.Context, c *client, _ []string) error {
			if err := required("grid", grid, "category", category); err != nil {
				return err
			}
			u, err := parseUrgency(urgency)
			if err != nil {
				return err
			}
			ctx, cancel := unary(ctx)
			defer cancel()
			resp, err := c.routing.ExplainRoute(ctx, &whistlev1.ExplainRouteRequest{GridId: grid, CategoryId: category, Urgency: u})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, resp)
			}
			tw := table(c.out)
			row(tw, "matched:", yesNo(resp.GetMatched()))
			row(tw, "rule:", orDash(resp.GetRuleId()))
			row(tw, "street:", orDash(resp.GetStreetId()))
			row(tw, "why:", resp.GetExplanation())
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(resp.GetAssignments()) == 0 {
				return nil
			}
			fmt.Fprintln(c.out)
			tw = table(c.out)
			row(tw, "DEPARTMENT", "ROLE", "REPORT IN", "RESOLVE")
			for _, a := range resp.GetAssignments() {
				row(tw, a.GetDepartmentId(), enumText(a.GetRole()), limit(a.GetPolicy().GetReportInWithin()), limit(a.GetPolicy().GetResolveWithin()))
			}
			return tw.Flush()
		}),
	}
	explain.Flags().StringVar(&grid, "grid", "", "grid `id` (see: whistle areas)")
	explain.Flags().StringVar(&category, "category", "", "category `id` (see: whistle categories)")
	explain.Flags().StringVar(&urgency, "urgency", "normal", "normal, urgent or emergency")
	route.AddCommand(explain)
	return route
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
