// Package access decides who may see and do what, from the caller's signed role and scope and
// the area tree. Every service asks the same questions, so they are answered in one place.
package access

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// Caller returns the authenticated caller, or an Unauthenticated status when there is none.
func Caller(ctx context.Context) (authx.Principal, error) {
	p, ok := authx.PrincipalFrom(ctx)
	if !ok {
		return authx.Principal{}, status.Error(codes.Unauthenticated, "no valid token: pass one with --token or WHISTLE_TOKEN")
	}
	return p, nil
}

// SeesArea reports whether the caller is a person of an area (grid worker, dispatcher or
// supervisor) whose scope covers an area (grid, community, street or the city). Duty officers'
// scopes are units, which cover no area; an integrator's city scope is for intake alone (see
// ForThePublic).
func SeesArea(cat *catalog.Catalog, p authx.Principal, areaID string) bool {
	switch p.Role {
	case authx.RoleGridWorker, authx.RoleDispatcher, authx.RoleSupervisor:
		return cat.Contains(p.Scope, areaID)
	}
	return false
}

// ForThePublic reports whether the caller is an integrator: a system that raises and follows
// issues anywhere in the city on the public's behalf. Intake lets it raise, read and list; no
// other service grants it anything.
func ForThePublic(p authx.Principal) bool {
	return p.Role == authx.RoleIntegrator && p.Scope == authx.CityScope
}

// ActsFor reports whether the caller acts for the unit: a duty officer of it, or the worker of a
// grid for the grid's own unit, which holds the issues kept in the grid (grid matters).
func ActsFor(p authx.Principal, unitID string) bool {
	return (p.Role == authx.RoleOfficer || p.Role == authx.RoleGridWorker) && p.Scope == unitID
}

// Denied is the PermissionDenied status every service answers when a scope does not cover a thing.
func Denied(what string) error {
	return status.Errorf(codes.PermissionDenied, "your token's scope does not cover %s", what)
}
