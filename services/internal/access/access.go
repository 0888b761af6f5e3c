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

// SeesArea reports whether the caller's scope covers an area (grid, community, street or the
// city). Duty officers' scopes are units, which cover no area.
func SeesArea(cat *catalog.Catalog, p authx.Principal, areaID string) bool {
	return p.Role != authx.RoleOfficer && cat.Contains(p.Scope, areaID)
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
