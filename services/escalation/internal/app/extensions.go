package app

import (
	"context"

	"github.com/whistle-dispatch/whistle/services/escalation/internal/domain"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
)

// PendingExtensions returns a page of the extension requests that wait for a decision and that f
// keeps (its department or unit, and its area, the caller's scope folded in), oldest first, after
// the cursor, and the cursor of the next page (the zero Cursor on the last). The list is the
// projection's index of pending requests, so a request the stream has and the consumer has not
// applied yet shows a moment later.
func (s *Supervisors) PendingExtensions(ctx context.Context, f Filter, after store.Cursor, size int) ([]domain.PendingExtension, store.Cursor, error) {
	ctx, span := tracer.Start(ctx, "app.Supervisors.PendingExtensions")
	defer span.End()
	return s.store.PendingExtensions(ctx, after, size, func(p domain.PendingExtension) bool {
		return (f.DepartmentID == "" || f.DepartmentID == p.DepartmentID || f.DepartmentID == p.UnitID) &&
			(f.AreaID == "" || s.catalog.Contains(f.AreaID, p.GridID))
	})
}
