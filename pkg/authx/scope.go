package authx

import (
	"fmt"
	"slices"
	"strings"
)

// ScopeKind is what a scope id names in the city's catalog. authx holds no catalog, so the
// caller that has one says which kind a scope is, and CheckScope says whether a role may
// hold it.
type ScopeKind string

// The kinds of scope.
const (
	// ScopeGrid is a grid, the smallest area, where grid workers work.
	ScopeGrid ScopeKind = "grid"
	// ScopeCommunity and ScopeStreet are the areas above grids.
	ScopeCommunity ScopeKind = "community"
	ScopeStreet    ScopeKind = "street"
	// ScopeCity is the whole area tree, CityScope.
	ScopeCity ScopeKind = "city"
	// ScopeUnit is a unit of a department, which an officer's assignments belong to.
	ScopeUnit ScopeKind = "unit"
)

// roleScopes is what each role's scope may name, with how a refusal says it. An officer's
// scope selects an inbox by unit and a grid worker raises in one grid, so an area
// given to either would mint a token that sees nothing; dispatchers and supervisors look
// over a part of the area tree.
var roleScopes = map[Role]struct {
	kinds []ScopeKind
	want  string
}{
	RoleGridWorker: {[]ScopeKind{ScopeGrid}, "a grid id"},
	RoleOfficer:    {[]ScopeKind{ScopeUnit}, "a unit id (a department listed without units has one, with the department's id)"},
	RoleDispatcher: {[]ScopeKind{ScopeGrid, ScopeCommunity, ScopeStreet, ScopeCity}, "an area id (street, community or grid) or " + CityScope},
	RoleSupervisor: {[]ScopeKind{ScopeGrid, ScopeCommunity, ScopeStreet, ScopeCity}, "an area id (street, community or grid) or " + CityScope},
	RoleIntegrator: {[]ScopeKind{ScopeCity}, CityScope + ": the place of each request decides its grid"},
}

// CheckScope reports whether role r may hold scope, which names a kind; the error names the
// role, the scope, what the scope is and what it must be.
func CheckScope(r Role, scope string, kind ScopeKind) error {
	rule, ok := roleScopes[r]
	if !ok {
		_, err := ParseRole(string(r))
		return err
	}
	if slices.Contains(rule.kinds, kind) {
		return nil
	}
	return fmt.Errorf("authx: a %s cannot hold scope %q, which is %s %s: a %s's scope must be %s",
		r, scope, article(string(kind)), kind, r, rule.want)
}

// article is "a" or "an" for a word.
func article(w string) string {
	if w != "" && strings.ContainsRune("aeiou", rune(w[0])) {
		return "an"
	}
	return "a"
}
