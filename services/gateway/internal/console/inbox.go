package console

import (
	"bytes"
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// inboxItem is one assignment as an officer's inbox shows it: the deadline that is next, and how
// long is left before it, or how long it is overdue.
type inboxItem struct {
	IssueID, Category, Text, Urgency, Status string
	Unit                                     string // the unit whose part it is
	Deadline, Left                           string
	Overdue, CanAcknowledge                  bool
	next                                     time.Time // the next deadline, by which the inbox is sorted
}

func (c *Console) inboxItem(q *request, names map[string]string, it *whistlev1.InboxItem) inboxItem {
	a := it.GetAssignment()
	st := strings.ToLower(strings.TrimPrefix(a.GetStatus().String(), "ASSIGNMENT_STATUS_"))
	v := inboxItem{IssueID: it.GetIssueId(), Category: nameOr(names, it.GetCategoryId()), Text: it.GetText(),
		Unit:           cmp.Or(a.GetUnitId(), a.GetDepartmentId()),
		Urgency:        q.lang.T("urgency." + strings.ToLower(strings.TrimPrefix(it.GetUrgency().String(), "URGENCY_"))),
		Status:         q.lang.T("assignment_status." + st),
		CanAcknowledge: a.GetStatus() == whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED}
	switch a.GetStatus() {
	case whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED:
		v.next = a.GetReportInBy().AsTime()
	case whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED:
		v.next = a.GetResolveBy().AsTime()
	default:
		return v
	}
	v.Deadline = c.when(v.next)
	left := v.next.Sub(c.cfg.Now()).Truncate(time.Minute)
	if v.Overdue = left < 0; v.Overdue {
		v.Left = q.lang.T("time.overdue", duration(q.lang, -left))
	} else {
		v.Left = q.lang.T("time.left", duration(q.lang, left))
	}
	return v
}

// duration writes d in days, hours and minutes, as people read it.
func duration(l lang, d time.Duration) string {
	days, hours, minutes := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0:
		return l.T("time.days_hours", days, hours)
	case hours > 0:
		return l.T("time.hours_minutes", hours, minutes)
	}
	return l.T("time.minutes", minutes)
}

// inbox is the officer's open inbox, soonest deadline first; the page keeps itself live.
func (c *Console) inbox(q *request) {
	items, err := c.inboxItems(q)
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	c.render(q.w, http.StatusOK, "inbox.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.Path,
		Data: inboxPage{Items: items, CSRF: q.session.CSRF, Duty: c.onDuty(q)}})
}

// inboxPage is what the inbox's template is given.
type inboxPage struct {
	Items []inboxItem
	CSRF  string
	Duty  string // who is on duty in the unit now, and until when
}

// onDuty says who is on duty in the officer's unit now and until when; a failure to ask shows
// nothing, since the inbox matters more.
func (c *Console) onDuty(q *request) string {
	resp, err := whistlev1.NewDepartmentServiceClient(c.cfg.Conn).WhoIsOnDuty(q.r.Context(), &whistlev1.WhoIsOnDutyRequest{}, q.call())
	if err != nil {
		c.cfg.Logger.Warn("console: who is on duty", "err", err)
		return ""
	}
	if !resp.GetHasRoster() {
		return q.lang.T("inbox.no_roster")
	}
	names := make([]string, 0, len(resp.GetOnDuty()))
	for _, o := range resp.GetOnDuty() {
		names = append(names, cmp.Or(o.GetName(), o.GetId()))
	}
	out := strings.Join(names, ", ")
	if until := resp.GetUntil(); until != nil {
		out += " · " + q.lang.T("inbox.until", c.when(until.AsTime()))
	}
	return out
}

// inboxItems reads the unit's open assignments, soonest deadline first.
func (c *Console) inboxItems(q *request) ([]inboxItem, error) {
	resp, err := whistlev1.NewDepartmentServiceClient(c.cfg.Conn).ListInbox(q.r.Context(), &whistlev1.ListInboxRequest{PageSize: 200}, q.call())
	if err != nil {
		return nil, err
	}
	names := c.categoryNames(q)
	items := make([]inboxItem, 0, len(resp.GetItems()))
	for _, it := range resp.GetItems() {
		items = append(items, c.inboxItem(q, names, it))
	}
	slices.SortStableFunc(items, func(a, b inboxItem) int { return cmp.Or(a.next.Compare(b.next), cmp.Compare(a.IssueID, b.IssueID)) })
	return items, nil
}

// inboxEvents streams the inbox, rendered again, each time the unit's inbox changes (as
// WatchInbox tells), as server-sent events the page swaps in. Changes that come while one is
// rendered are shown together by the next.
func (c *Console) inboxEvents(q *request) {
	ctx := q.r.Context()
	stream, err := whistlev1.NewDepartmentServiceClient(c.cfg.Conn).WatchInbox(ctx, &whistlev1.WatchInboxRequest{}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	changed, ended := follow(stream.Recv, nil)
	flusher, ok := startEvents(q.w)
	if !ok {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-ended:
			c.cfg.Logger.Debug("console: inbox watch ended", "err", err)
			return
		case <-tick.C:
			if stillHere(q.w) != nil {
				return
			}
		case <-changed:
			items, err := c.inboxItems(q)
			if err != nil {
				c.cfg.Logger.Warn("console: inbox", "err", err)
				return
			}
			var buf bytes.Buffer
			if err := c.pages["inbox.html"].ExecuteTemplate(&buf, "inbox-list", page{L: q.lang, Session: &q.session,
				Data: inboxPage{Items: items, CSRF: q.session.CSRF}}); err != nil {
				c.cfg.Logger.Error("console: render the inbox", "err", err)
				return
			}
			if err := writeEvent(q.w, "inbox", buf.String()); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}
