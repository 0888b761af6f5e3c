package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// boardPageSize is how many breaches the board shows at once: a wall screen's worth.
const boardPageSize = 50

// svMaxLevel is the highest escalation level a list may be narrowed to, as the API bounds it.
const svMaxLevel = 16

// The response headers by which WatchBreaches says where it follows from, once it listens.
const (
	watchPositionHeader = "whistle-watch-position"
	watchAfterHeader    = "whistle-watch-after"
)

// svIssueReads bounds the issues the board reads at once to learn where each breached clock
// stands now: enough to be quick, few enough not to flood the intake service.
const svIssueReads = 8

// boardFilter is what the board is narrowed to, as its GET form gives it, and the request it
// makes of ListBreaches.
type boardFilter struct {
	// The fields as the person typed them, to show them again.
	Area, Department, Level, From, To string
	// Page is the page token of an older page; empty for the newest page, which is live.
	Page string
	req  *whistlev1.ListBreachesRequest
}

// Any reports whether the filter narrows the list at all.
func (f boardFilter) Any() bool {
	return f.Area != "" || f.Department != "" || f.Level != "" || f.From != "" || f.To != ""
}

// boardFilter reads the board's form; msg is the person's message naming the field that is
// wrong.
func (c *Console) boardFilter(l lang, v url.Values) (f boardFilter, msg string) {
	f = boardFilter{Area: strings.TrimSpace(v.Get("area")), Department: strings.TrimSpace(v.Get("department")),
		Level: strings.TrimSpace(v.Get("level")), From: strings.TrimSpace(v.Get("from")), To: strings.TrimSpace(v.Get("to")),
		Page: v.Get("page")}
	f.req = &whistlev1.ListBreachesRequest{AreaId: f.Area, DepartmentId: f.Department, PageSize: boardPageSize, PageToken: f.Page}
	switch {
	case !svCheckID(f.Area):
		return f, l.T("supervisor.invalid.choice", l.T("supervisor.field.area"))
	case !svCheckID(f.Department):
		return f, l.T("supervisor.invalid.choice", l.T("supervisor.field.department"))
	case len(f.Page) > 1024: // a page token is short; a longer one was not given by the board
		return f, l.T("supervisor.invalid.page")
	}
	if f.Level != "" {
		n, err := strconv.Atoi(f.Level)
		if err != nil || n < 0 || n > svMaxLevel {
			return f, l.T("supervisor.invalid.level", svMaxLevel)
		}
		f.req.MinLevel = int32(n)
	}
	from, until, msg := c.svPeriod(l, f.From, f.To)
	if msg != "" {
		return f, msg
	}
	if !from.IsZero() {
		f.req.From = timestamppb.New(from)
	}
	if !until.IsZero() {
		f.req.Until = timestamppb.New(until)
	}
	return f, ""
}

// query is the filter as a URL query, with the pairs of extra added (key, value, key, value...).
func (f boardFilter) query(extra ...string) string {
	v := url.Values{}
	for _, kv := range [][2]string{{"area", f.Area}, {"department", f.Department}, {"level", f.Level}, {"from", f.From}, {"to", f.To}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v.Encode()
}

// boardPage is what the board's template is given.
type boardPage struct {
	Nav         supervisorNav
	Scope       string // the person's scope, by name
	Filter      boardFilter
	Areas       []svOptionGroup
	Departments []svOptionGroup
	List        boardList
	// Live is set on the newest page, which keeps itself live from Events.
	Live   bool
	Events string
	// Older is the next page's address; empty on the last.
	Older string
}

// boardList is the part of the board that the live stream renders again.
type boardList struct {
	Rows []breachRow
}

// breachRow is one breach as the board shows it.
type breachRow struct {
	ID                              string // the element's id, which keeps focus on it across a live swap
	IssueID, Category, Place, Unit  string
	Kind, Deadline, BreachedAt      string
	Late, Level, State, Anchor      string
	Open                            bool // still overdue now
	Urges                           int32
	ExtensionPending, Supervise     bool
	Round                           int32
	deadline, breachedAt, clearedAt time.Time
}

// svBreaches is the live breach board: the breaches in the person's scope, newest first.
func (c *Console) svBreaches(q *request) {
	d := c.svDirectory(q)
	f, msg := c.boardFilter(q.lang, q.r.URL.Query())
	scope := q.session.Principal.Scope
	p := boardPage{Nav: q.svNav("breaches"), Scope: d.name(scope), Filter: f,
		Areas: d.areaOptions(q.lang, scope, f.Area), Departments: d.departmentOptions(q.lang, f.Department)}
	if msg != "" {
		c.render(q.w, http.StatusBadRequest, "supervisor-breaches.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.RequestURI(), Error: msg, Data: p})
		return
	}
	list, next, err := c.boardList(q, d, f)
	if err != nil {
		if code, msg, ok := refusal(q.lang, err); ok {
			c.render(q.w, code, "supervisor-breaches.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.RequestURI(), Error: msg, Data: p})
			return
		}
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	p.List = list
	if next != "" {
		p.Older = "/console/breaches?" + f.query("page", next)
	}
	if f.Page == "" {
		// The stream is told which list the page shows, so that it sends the list only when it
		// differs: the page does not flicker when the stream begins.
		_, version, err := c.renderBoardList(q, list)
		if err != nil {
			c.fail(q.w, q.r, q.lang, &q.session, err)
			return
		}
		p.Live, p.Events = true, "/console/breaches/events?"+f.query("v", version)
	}
	c.render(q.w, http.StatusOK, "supervisor-breaches.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.RequestURI(), Data: p})
}

// boardList reads one page of breaches and where each breached clock stands now, and returns the
// next page's token.
func (c *Console) boardList(q *request, d svDirectory, f boardFilter) (boardList, string, error) {
	resp, err := whistlev1.NewEscalationServiceClient(c.cfg.Conn).ListBreaches(q.r.Context(), f.req, q.call())
	if err != nil {
		return boardList{}, "", err
	}
	var ids []string
	seen := map[string]bool{}
	for _, b := range resp.GetBreaches() {
		if !seen[b.GetIssueId()] {
			seen[b.GetIssueId()] = true
			ids = append(ids, b.GetIssueId())
		}
	}
	issues := c.svIssuesOf(q, ids)
	now := c.cfg.Now()
	list := boardList{Rows: make([]breachRow, 0, len(resp.GetBreaches()))}
	for _, b := range resp.GetBreaches() {
		list.Rows = append(list.Rows, c.breachRow(q, d, b, issues[b.GetIssueId()], now))
	}
	return list, resp.GetNextPageToken(), nil
}

// svIssuesOf reads the issues, a few at a time. An issue that cannot be read is left out and
// logged: its breaches then show what the breach alone says.
func (c *Console) svIssuesOf(q *request, ids []string) map[string]*whistlev1.Issue {
	intake := whistlev1.NewIntakeServiceClient(c.cfg.Conn)
	out := make(map[string]*whistlev1.Issue, len(ids))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(svIssueReads)
	for _, id := range ids {
		g.Go(func() error {
			resp, err := intake.GetIssue(q.r.Context(), &whistlev1.GetIssueRequest{Id: id}, q.call())
			if err != nil {
				c.cfg.Logger.Warn("console: read a breached issue", "issue", id, "err", err)
				return nil
			}
			mu.Lock()
			out[id] = resp.GetIssue()
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait() // no read returns an error
	return out
}

// breachRow is a breach as the board shows it, with where its clock stands now as the issue's
// part says (is may be nil when the issue could not be read).
func (c *Console) breachRow(q *request, d svDirectory, b *whistlev1.Breach, is *whistlev1.Issue, now time.Time) breachRow {
	l := q.lang
	r := breachRow{ID: fmt.Sprintf("breach-%d", b.GetSeq()), IssueID: b.GetIssueId(), Category: nameOr(d.categories, b.GetCategoryId()),
		Place: d.place(b.GetStreetId(), b.GetGridId()), Unit: d.unit(b.GetDepartmentId(), b.GetUnitId()),
		Kind: svDeadlineKind(l, b.GetKind()), deadline: b.GetDeadline().AsTime(), breachedAt: b.GetBreachedAt().AsTime(),
		Anchor: "part-" + b.GetUnitId(), Round: b.GetRound(), Supervise: q.session.Principal.Role == authx.RoleSupervisor}
	r.Deadline, r.BreachedAt = c.when(r.deadline), c.when(r.breachedAt)
	if r.Level = l.T("supervisor.level.none"); b.GetLevel() > 0 {
		r.Level = l.T("supervisor.level.n", b.GetLevel())
	}
	a := svPartOf(is, b.GetUnitId(), b.GetDepartmentId())
	if a != nil {
		r.Urges, r.ExtensionPending = a.GetUrges(), a.GetExtensionRequested() != nil
	}
	switch state, at := svClockNow(b, a); state {
	case svClockCleared:
		r.clearedAt = at
		if at.IsZero() {
			r.State = l.T("supervisor.state.cleared")
		} else {
			r.State, r.Late = l.T("supervisor.state.cleared_at", c.when(at)), svLateness(l, at.Sub(r.deadline))
		}
	case svClockEnded:
		st := strings.ToLower(strings.TrimPrefix(a.GetStatus().String(), "ASSIGNMENT_STATUS_"))
		r.State, r.Late = l.T("supervisor.state.ended", l.T("assignment_status."+st), c.when(at)), svLateness(l, at.Sub(r.deadline))
	case svClockRunning:
		r.Open, r.State, r.Late = true, l.T("supervisor.state.open"), svLateness(l, now.Sub(r.deadline))
	default:
		r.State = l.T("supervisor.state.unknown")
	}
	return r
}

// svPartOf is the issue's part of the unit, or of the department when no part names the unit;
// nil when there is none or the issue is unknown.
func svPartOf(is *whistlev1.Issue, unit, dept string) *whistlev1.Assignment {
	var byDept *whistlev1.Assignment
	for _, a := range is.GetAssignments() {
		switch {
		case unit != "" && svUnitOf(a) == unit:
			return a
		case a.GetDepartmentId() == dept && byDept == nil:
			byDept = a
		}
	}
	return byDept
}

// svClockState is where a breached deadline's clock stands now.
type svClockState int

const (
	svClockUnknown svClockState = iota // the part could not be read
	svClockRunning                     // still overdue: nobody reported in, or resolved
	svClockCleared                     // reported in or resolved since, late
	svClockEnded                       // the part was returned or withdrawn before it was cleared
)

// svClockNow says where b's clock stands, by the issue's part a, and since when. A breach of a
// round the part has left behind (the issue was reopened after it) was cleared, though the part
// no longer says when.
func svClockNow(b *whistlev1.Breach, a *whistlev1.Assignment) (svClockState, time.Time) {
	if b.GetClearedAt() != nil {
		return svClockCleared, b.GetClearedAt().AsTime()
	}
	if a == nil {
		return svClockUnknown, time.Time{}
	}
	if b.GetRound() < a.GetReopened() {
		return svClockCleared, time.Time{}
	}
	cleared := a.GetAcknowledgedAt()
	if b.GetKind() == whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE {
		cleared = a.GetResolvedAt()
	}
	if cleared != nil && cleared.AsTime().Unix() > 0 {
		return svClockCleared, cleared.AsTime()
	}
	switch a.GetStatus() {
	case whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RETURNED, whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_WITHDRAWN:
		return svClockEnded, a.GetEndedAt().AsTime()
	}
	return svClockRunning, time.Time{}
}

// renderBoardList renders the live part of the board, and its version: a digest by which the
// stream knows whether the page already shows it.
func (c *Console) renderBoardList(q *request, list boardList) (string, string, error) {
	var buf bytes.Buffer
	if err := c.pages["supervisor-breaches.html"].ExecuteTemplate(&buf, "breach-list", page{L: q.lang, Data: boardPage{List: list}}); err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.String(), hex.EncodeToString(sum[:8]), nil
}

// svBreachEvents streams the board's list, rendered again, as server-sent events the page swaps in:
// when WatchBreaches tells of a breach or of a level its chain reached (with a short notice for
// screen readers), and every heartbeat, since a late report-in or resolution clears a breach's
// clock without a word on the watch. A list is sent only when it differs from the one the page
// shows; breaches that come while one is rendered are shown together by the next.
//
// It follows the watch as the inbox does (inboxEvents), with a render at every heartbeat besides.
func (c *Console) svBreachEvents(q *request) {
	f, msg := c.boardFilter(q.lang, q.r.URL.Query())
	if msg != "" || f.Page != "" {
		http.Error(q.w, msg, http.StatusBadRequest)
		return
	}
	ctx := q.r.Context()
	stream, err := whistlev1.NewEscalationServiceClient(c.cfg.Conn).WatchBreaches(ctx,
		&whistlev1.WatchBreachesRequest{AreaId: f.Area, DepartmentId: f.Department}, q.call())
	if err == nil {
		// The watch's headers say where it listens from: a breach recorded after that reaches
		// the page. A refusal ends the call without them; its status comes with the first read.
		var md metadata.MD
		if md, err = stream.Header(); err == nil && len(md.Get(watchPositionHeader)) == 0 && len(md.Get(watchAfterHeader)) == 0 {
			_, err = stream.Recv()
		}
	}
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	d := c.svDirectory(q)
	var mu sync.Mutex
	var fresh []*whistlev1.Breach // new breaches not told yet
	changed, ended := follow(stream.Recv, func(resp *whistlev1.WatchBreachesResponse) {
		mu.Lock()
		fresh = append(fresh, resp.GetBreach())
		mu.Unlock()
	})
	// The first render closes the gap between the page's list and the watch's start.
	select {
	case changed <- struct{}{}:
	default:
	}
	flusher, ok := startEvents(q.w)
	if !ok {
		return
	}
	shown := q.r.URL.Query().Get("v")
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-ended:
			c.cfg.Logger.Debug("console: breach watch ended", "err", err)
			return
		case <-tick.C:
		case <-changed:
		}
		mu.Lock()
		told := fresh
		fresh = nil
		mu.Unlock()
		list, _, err := c.boardList(q, d, f)
		if err != nil {
			c.cfg.Logger.Warn("console: breach board", "err", err)
			return
		}
		html, version, err := c.renderBoardList(q, list)
		if err != nil {
			c.cfg.Logger.Error("console: render the breach board", "err", err)
			return
		}
		switch {
		case version != shown:
			err = writeEvent(q.w, "breaches", html)
			shown = version
		default:
			err = stillHere(q.w)
		}
		if err == nil && len(told) > 0 {
			err = writeEvent(q.w, "news", c.breachNews(q.lang, d, told))
		}
		if err != nil {
			return
		}
		flusher.Flush()
	}
}

// breachNews is the notice of new breaches that the page's status line shows, and screen
// readers say: the newest, and how many came.
func (c *Console) breachNews(l lang, d svDirectory, bs []*whistlev1.Breach) string {
	b := bs[len(bs)-1]
	what := l.T("supervisor.news.one", b.GetIssueId(), d.unit(b.GetDepartmentId(), b.GetUnitId()), svDeadlineKind(l, b.GetKind()))
	if len(bs) > 1 {
		what = l.T("supervisor.news.many", len(bs), what)
	}
	var buf bytes.Buffer
	// The notice is text; the template escapes it as the page's templates do.
	if err := c.pages["supervisor-breaches.html"].ExecuteTemplate(&buf, "breach-news", what); err != nil {
		c.cfg.Logger.Error("console: render the breach notice", "err", err)
		return ""
	}
	return buf.String()
}
