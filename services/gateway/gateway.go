// Package gateway serves the people's surfaces over HTTP: the web console under /console/, and
// Open311 GeoReport v2 for the city's other systems (a hotline, a residents' or an enterprises'
// service) under /open311/v2/. It
// holds no state and reaches the services only through their public gRPC APIs, as any client
// would: a raise goes to intake with the integrator's own API key as its token, so the stream
// records the integrator as the raiser.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/grpcx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/gateway/internal/console"
	"github.com/whistle-dispatch/whistle/services/gateway/internal/open311"
)

// Config is what the gateway needs; Targets and Authority are required.
type Config struct {
	// Targets are where the services' gRPC APIs answer.
	Targets Targets
	// Authority verifies integrators' API keys and mints the gateway's own token, with which it
	// reads for callers who give no key.
	Authority *authx.Authority
	// Zone is the city's time zone, in which datetimes are written; nil means time.Local.
	Zone *time.Location
	// Jurisdiction is the Open311 jurisdiction_id this city answers to; empty accepts none given.
	Jurisdiction string
	// Contact is the discovery document's contact line.
	Contact string
	// Redis keeps the console's sessions and spent sign-in links; nil serves no console.
	Redis redis.UniversalClient
	// MapTiles is the city's tile server beneath the console's map; empty draws the grids alone.
	MapTiles string
}

// ReaderSubject is the subject of the gateway's own token, with which it reads for callers who
// give no API key (the specification's GETs need none).
const ReaderSubject = "open311-gateway"

// readerTTL is how long the gateway's own token lives; it mints a new one before it ends.
const readerTTL = time.Hour

// MaxIDs bounds the service_request_id list of one GET.
const MaxIDs = 100

// listConcurrency is how many issues' timelines a list reads at once for their status notes.
const listConcurrency = 8

// Targets are the gRPC addresses of the four services. whistle up serves them all at one address
// (OneTarget); whistle serve gateway is given each service's own.
type Targets struct {
	Intake, Routing, Department, Escalation string
}

// OneTarget is every service at one address.
func OneTarget(addr string) Targets { return Targets{addr, addr, addr, addr} }

// byService names each target by the full name of the gRPC service it serves.
func (t Targets) byService() map[string]string {
	return map[string]string{
		whistlev1.IntakeService_ServiceDesc.ServiceName:     t.Intake,
		whistlev1.RoutingService_ServiceDesc.ServiceName:    t.Routing,
		whistlev1.DepartmentService_ServiceDesc.ServiceName: t.Department,
		whistlev1.EscalationService_ServiceDesc.ServiceName: t.Escalation,
	}
}

// Gateway serves Open311 and the console. Close releases its connections.
type Gateway struct {
	cfg     Config
	conns   []*grpc.ClientConn // one per address
	conn    grpcx.Router       // to the services, each call to its own; each carries its caller's token
	handler http.Handler       // Open311
	console *console.Console   // nil without Redis

	mu     sync.Mutex
	reader string // the gateway's own token, for callers who give no key
	minted time.Time
}

// New wires the gateway; it dials lazily, so the services need not be up yet.
func New(cfg Config) (*Gateway, error) {
	if cfg.Authority == nil {
		return nil, errors.New("gateway: Authority is required")
	}
	if cfg.Zone == nil {
		cfg.Zone = time.Local
	}
	g := &Gateway{cfg: cfg, conn: grpcx.Router{}}
	byAddr := map[string]*grpc.ClientConn{}
	for service, addr := range cfg.Targets.byService() {
		if addr == "" {
			_ = g.Close()
			return nil, fmt.Errorf("gateway: no address for %s", service)
		}
		if byAddr[addr] == nil {
			conn, err := grpcx.Dial(addr, "")
			if err != nil {
				_ = g.Close()
				return nil, fmt.Errorf("gateway: %w", err)
			}
			byAddr[addr] = conn
			g.conns = append(g.conns, conn)
		}
		g.conn[service] = byAddr[addr]
	}
	var err error
	opts := open311.Options{Jurisdiction: cfg.Jurisdiction, Contact: cfg.Contact,
		KeyService: "whistle open311 key --name NAME, run by the city's operator", Location: cfg.Zone}
	if cfg.Redis != nil {
		// Every gateway of the city counts each integrator's and address's calls together.
		opts.Limiter = redisLimiter{redis_rate.NewLimiter(cfg.Redis)}
	}
	g.handler = open311.NewHandler(backend{g}, opts)
	if cfg.Redis != nil {
		if g.console, err = console.New(console.Config{Conn: g.conn, Authority: cfg.Authority, Redis: cfg.Redis, Zone: cfg.Zone, MapTiles: cfg.MapTiles}); err != nil {
			_ = g.Close()
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	return g, nil
}

// limitKeyPrefix begins the Redis key of every Open311 rate limit; redis_rate puts "rate:"
// before it, which the gateway's Redis user allows (system.RedisKeys).
const limitKeyPrefix = "gateway:open311:"

// redisLimiter keeps Open311's rate limits in Redis (GCRA, go-redis/redis_rate), so that the
// gateways of a city share them.
type redisLimiter struct{ l *redis_rate.Limiter }

// Take spends one call of the named bucket.
func (r redisLimiter) Take(ctx context.Context, name string, perSecond rate.Limit, burst int) (time.Duration, error) {
	res, err := r.l.Allow(ctx, limitKeyPrefix+name, redis_rate.Limit{Rate: int(perSecond), Burst: burst, Period: time.Second})
	if err != nil {
		return 0, fmt.Errorf("gateway: rate limit: %w", err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return res.RetryAfter, nil
}

// Open311Path and ConsolePath are where the gateway's surfaces are mounted; SessionTTL is how
// long a console session lasts, and MaxLinkTTL the longest a sign-in link may wait to be opened.
const (
	Open311Path = open311.Prefix
	ConsolePath = console.Path
	SessionTTL  = console.SessionTTL
	MaxLinkTTL  = console.MaxLinkTTL
	// AnonymousBurst is how many Open311 calls one address may make at once without an api_key.
	AnonymousBurst = open311.AnonymousBurst
)

// Mount serves Open311 at Open311Path and, with Redis, the console at ConsolePath.
func (g *Gateway) Mount(mux *http.ServeMux) {
	mux.Handle(Open311Path, g.handler)
	if g.console != nil {
		mux.Handle(ConsolePath, g.console)
		mux.Handle("GET /{$}", http.RedirectHandler(ConsolePath, http.StatusSeeOther))
	}
}

// Close closes the connections to the services.
func (g *Gateway) Close() error {
	var errs []error
	for _, conn := range g.conns {
		errs = append(errs, conn.Close())
	}
	return errors.Join(errs...)
}

// Ready reports whether every service answers its health check, each at its own address, so that
// a gateway of its own is not sent people before the services it calls answer.
func (g *Gateway) Ready(ctx context.Context) error {
	for service, conn := range g.conn {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return fmt.Errorf("gateway: %s: %w", service, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("gateway: %s is %s", service, resp.GetStatus())
		}
	}
	return nil
}

// as is the call option that sends token with a call.
func as(token string) grpc.CallOption { return grpc.PerRPCCredentials(authx.BearerToken(token)) }

// readerToken is the gateway's own token, minted again when half its life is gone.
func (g *Gateway) readerToken() (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reader == "" || time.Since(g.minted) > readerTTL/2 {
		tok, err := g.cfg.Authority.Mint(authx.Principal{Subject: ReaderSubject, Role: authx.RoleIntegrator, Scope: authx.CityScope}, readerTTL)
		if err != nil {
			return "", fmt.Errorf("gateway: mint the reader's token: %w", err)
		}
		g.reader, g.minted = tok, time.Now()
	}
	return g.reader, nil
}

// backend implements open311.Backend on the services' gRPC APIs.
type backend struct{ g *Gateway }

var _ open311.Backend = backend{}

// Integrator names the integrator of an API key: a token of the integrator role over the city.
func (b backend) Integrator(_ context.Context, apiKey string) (string, error) {
	p, err := b.g.cfg.Authority.Verify(apiKey)
	if err != nil || p.Role != authx.RoleIntegrator || p.Scope != authx.CityScope || p.Subject == ReaderSubject {
		return "", open311.Refuse(open311.ErrForbidden, "the api_key is not a valid key of an integrator")
	}
	return p.Subject, nil
}

// catalog is the categories and departments, read once per call that needs their names.
type catalog struct {
	categories  []*whistlev1.Category
	departments map[string]string // id → name
}

func (b backend) catalog(ctx context.Context, withDepartments bool) (catalog, error) {
	tok, err := b.g.readerToken()
	if err != nil {
		return catalog{}, err
	}
	routing := whistlev1.NewRoutingServiceClient(b.g.conn)
	cats, err := routing.ListCategories(ctx, &whistlev1.ListCategoriesRequest{}, as(tok))
	if err != nil {
		return catalog{}, fmt.Errorf("gateway: list categories: %w", err)
	}
	c := catalog{categories: cats.GetCategories(), departments: map[string]string{}}
	if withDepartments {
		depts, err := routing.ListDepartments(ctx, &whistlev1.ListDepartmentsRequest{}, as(tok))
		if err != nil {
			return catalog{}, fmt.Errorf("gateway: list departments: %w", err)
		}
		for _, d := range depts.GetDepartments() {
			c.departments[d.GetId()] = d.GetName()
		}
	}
	return c, nil
}

func (c catalog) category(code string) *whistlev1.Category {
	for _, k := range c.categories {
		if k.GetId() == code {
			return k
		}
	}
	return nil
}

// Services lists the categories, each with its urgency as its one attribute.
func (b backend) Services(ctx context.Context) ([]open311.Service, error) {
	c, err := b.catalog(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]open311.Service, 0, len(c.categories))
	for _, k := range c.categories {
		out = append(out, open311.Service{Code: k.GetId(), Name: k.GetName(), Description: describe(k),
			Metadata: true, Type: "realtime"})
	}
	return out, nil
}

// describe says a category's deadlines at normal urgency, which a resident can expect.
func describe(k *whistlev1.Category) string {
	p := k.GetNormal()
	return fmt.Sprintf("%s: the department reports in within %s and resolves within %s%s", k.GetName(),
		p.GetReportInWithin().AsDuration(), p.GetResolveWithin().AsDuration(), workingTime(p))
}

func workingTime(p *whistlev1.SlaPolicy) string {
	if p.GetWorkingTime() {
		return " of working time"
	}
	return ""
}

// urgencies are the values of the urgency attribute, as the request names them.
var urgencies = []struct {
	key, name string
	value     whistlev1.Urgency
}{
	{"normal", "Normal 一般", whistlev1.Urgency_URGENCY_NORMAL},
	{"urgent", "Urgent 紧急", whistlev1.Urgency_URGENCY_URGENT},
	{"emergency", "Emergency 特急", whistlev1.Urgency_URGENCY_EMERGENCY},
}

// urgencyAttribute is the code of a request's urgency, every service's one attribute.
const urgencyAttribute = "urgency"

// Definition is a category's definition: its urgency, which sets its deadlines.
func (b backend) Definition(ctx context.Context, code string) (open311.Definition, error) {
	c, err := b.catalog(ctx, false)
	if err != nil {
		return open311.Definition{}, err
	}
	if c.category(code) == nil {
		return open311.Definition{}, open311.Refuse(open311.ErrNotFound, "no service %q", code)
	}
	a := open311.Attribute{Variable: true, Code: urgencyAttribute, Datatype: "singlevaluelist", Order: 1,
		DatatypeDescription: "normal, urgent or emergency; normal when not given",
		Description:         "How urgent it is: it sets how soon the department must report in and resolve"}
	for _, u := range urgencies {
		a.Values = append(a.Values, open311.AttributeValue{Key: u.key, Name: u.name})
	}
	return open311.Definition{Code: code, Attributes: []open311.Attribute{a}}, nil
}

// Raise raises the request with intake, as the integrator whose key it is.
func (b backend) Raise(ctx context.Context, apiKey string, r open311.NewRequest) (open311.Receipt, error) {
	req := &whistlev1.RaiseIssueRequest{CategoryId: r.ServiceCode, Text: r.Description, MediaUrl: r.MediaURL,
		Contact: &whistlev1.Contact{FirstName: r.FirstName, LastName: r.LastName, Email: r.Email, Phone: r.Phone,
			DeviceId: r.DeviceID, AccountId: r.AccountID}}
	switch {
	case r.HasPoint:
		req.Location = &whistlev1.Location{Latitude: r.Lat, Longitude: r.Long, Address: r.AddressString}
	case strings.TrimSpace(r.AddressString) != "":
		// Intake places it by the residential compound the address names.
		req.Location = &whistlev1.Location{Address: r.AddressString, PlacedByAddress: true}
	default:
		return open311.Receipt{}, open311.Refuse(open311.ErrInvalid, "lat and long, or address_string, are required: the place decides the grid")
	}
	for code, values := range r.Attributes {
		if code != urgencyAttribute {
			return open311.Receipt{}, open311.Refuse(open311.ErrInvalid, "attribute[%s]: the services have no such attribute", code)
		}
		u, ok := urgency(values)
		if !ok {
			return open311.Receipt{}, open311.Refuse(open311.ErrInvalid, "attribute[%s]: want one of normal, urgent or emergency", code)
		}
		req.Urgency = u
	}
	req.RequestId = r.IdempotencyKey
	resp, err := whistlev1.NewIntakeServiceClient(b.g.conn).RaiseIssue(ctx, req, as(apiKey))
	if r.IdempotencyKey != "" && status.Code(err) == codes.FailedPrecondition {
		// The one precondition of a raise: its key stands for one request.
		return open311.Receipt{}, open311.Refuse(open311.ErrKeyReused, "%s", keyReused(status.Convert(err).Message()))
	}
	if err != nil {
		return open311.Receipt{}, fromStatus(err)
	}
	id := resp.GetIssue().GetId()
	return open311.Receipt{ServiceRequestID: id, Token: id, AccountID: r.AccountID,
		ServiceNotice: "Case " + id + ": follow it at requests/" + id}, nil
}

func urgency(values []string) (whistlev1.Urgency, bool) {
	if len(values) != 1 {
		return 0, false
	}
	for _, u := range urgencies {
		if values[0] == u.key {
			return u.value, true
		}
	}
	return 0, false
}

// Request reads one issue.
func (b backend) Request(ctx context.Context, id string) (open311.Request, error) {
	c, err := b.catalog(ctx, true)
	if err != nil {
		return open311.Request{}, err
	}
	return b.request(ctx, c, id)
}

func (b backend) request(ctx context.Context, c catalog, id string) (open311.Request, error) {
	tok, err := b.g.readerToken()
	if err != nil {
		return open311.Request{}, err
	}
	resp, err := whistlev1.NewIntakeServiceClient(b.g.conn).GetIssue(ctx, &whistlev1.GetIssueRequest{Id: id}, as(tok))
	if s, ok := status.FromError(err); ok && (s.Code() == codes.NotFound || s.Code() == codes.InvalidArgument) {
		return open311.Request{}, open311.Refuse(open311.ErrNotFound, "no request %q", id)
	}
	if err != nil {
		return open311.Request{}, fmt.Errorf("gateway: get %s: %w", id, err)
	}
	return toRequest(c, resp.GetIssue(), resp.GetTimeline()), nil
}

// Token answers the request a token was given for: the token is the case number, since a request
// is an issue by the time its POST answers; clients that follow the specification's token flow
// get it back here.
func (b backend) Token(ctx context.Context, token string) (string, error) {
	r, err := b.Request(ctx, token)
	if err != nil {
		return "", err
	}
	return r.ServiceRequestID, nil
}

// Requests lists the issues that match q, newest first, each read with its timeline for its
// status notes.
func (b backend) Requests(ctx context.Context, q open311.Query) ([]open311.Request, error) {
	c, err := b.catalog(ctx, true)
	if err != nil {
		return nil, err
	}
	ids := q.IDs
	if len(ids) > MaxIDs {
		return nil, open311.Refuse(open311.ErrInvalid, "service_request_id: at most %d ids", MaxIDs)
	}
	if len(ids) == 0 {
		if ids, err = b.list(ctx, q); err != nil {
			return nil, err
		}
	}
	out := make([]open311.Request, len(ids))
	found := make([]bool, len(ids))
	sem := make(chan struct{}, listConcurrency)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for i, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := b.request(ctx, c, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, open311.ErrNotFound):
			case err != nil && firstErr == nil:
				firstErr = err
			case err == nil:
				out[i], found[i] = r, true
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	kept := out[:0]
	for i, r := range out {
		if found[i] && (len(q.IDs) > 0 || matches(q, r)) {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// list pages through the city's issues, newest first, until q.Start or q.Limit, and returns the
// ids of those that match.
func (b backend) list(ctx context.Context, q open311.Query) ([]string, error) {
	tok, err := b.g.readerToken()
	if err != nil {
		return nil, err
	}
	intake := whistlev1.NewIntakeServiceClient(b.g.conn)
	codes := strings.Split(q.ServiceCode, ",") // the specification allows several, comma-separated
	req := &whistlev1.ListIssuesRequest{AreaId: authx.CityScope, PageSize: 200}
	if len(codes) == 1 {
		req.CategoryId = codes[0] // intake filters one category itself
	}
	var ids []string
	for {
		resp, err := intake.ListIssues(ctx, req, as(tok))
		if err != nil {
			return nil, fromStatus(err)
		}
		for _, is := range resp.GetIssues() {
			at := is.GetRaisedAt().AsTime()
			if !q.Start.IsZero() && at.Before(q.Start) {
				return ids, nil // newest first: the rest are older still
			}
			if (q.End.IsZero() || !at.After(q.End)) && (q.Status == "" || statusOf(is) == q.Status) &&
				(q.ServiceCode == "" || slices.Contains(codes, is.GetCategoryId())) {
				ids = append(ids, is.GetId())
				if q.Limit > 0 && len(ids) >= q.Limit {
					return ids, nil
				}
			}
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return ids, nil
		}
	}
}

// matches is the list's filters, applied again to the issue as read with its timeline.
func matches(q open311.Query, r open311.Request) bool {
	return q.Status == "" || r.Status == q.Status
}

// statusOf is the specification's status: closed once the issue closed, open before.
func statusOf(is *whistlev1.Issue) string {
	if is.GetStatus() == whistlev1.IssueStatus_ISSUE_STATUS_CLOSED {
		return "closed"
	}
	return "open"
}

// toRequest writes an issue as the specification's request: the lead department is the agency
// responsible, its resolve deadline the expected time, the latest timeline entry the notes.
func toRequest(c catalog, is *whistlev1.Issue, timeline []*whistlev1.TimelineEntry) open311.Request {
	r := open311.Request{ServiceRequestID: is.GetId(), Status: statusOf(is), ServiceCode: is.GetCategoryId(),
		Description: is.GetText(), RequestedDatetime: is.GetRaisedAt().AsTime(), UpdatedDatetime: is.GetUpdatedAt().AsTime(),
		MediaURL: is.GetMediaUrl()}
	if k := c.category(is.GetCategoryId()); k != nil {
		r.ServiceName = k.GetName()
	}
	if l := is.GetLocation(); l != nil {
		r.Lat, r.Long, r.HasPoint, r.Address = l.GetLatitude(), l.GetLongitude(), true, l.GetAddress()
	}
	if n := len(timeline); n > 0 {
		r.StatusNotes = timeline[n-1].GetSummary()
	}
	for _, a := range is.GetAssignments() {
		if a.GetRole() == whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD && a.GetEndedAt() == nil {
			r.AgencyResponsible = cmpOr(c.departments[a.GetDepartmentId()], a.GetDepartmentId())
			r.ExpectedDatetime = timeOf(a.GetResolveBy())
		}
	}
	return r
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fieldNames are intake's field names as the specification names them, for the errors it answers.
var fieldNames = map[string]string{
	"category_id": "service_code", "location.latitude": "lat", "location.longitude": "long",
	"location.address": "address_string", "location": "lat and long", "grid_id": "lat and long",
	"contact.first_name": "first_name", "contact.last_name": "last_name", "contact.email": "email",
	"contact.phone": "phone", "contact.device_id": "device_id", "contact.account_id": "account_id",
	"text": "description",
}

// asOpen311 names the field a service's message begins with ("field: problem") as the
// specification names it.
func asOpen311(msg string) string {
	field, problem, ok := strings.Cut(msg, ": ")
	if name, known := fieldNames[field]; ok && known {
		return name + ": " + problem
	}
	return msg
}

// keyReused is intake's refusal of a request id used for another raise, in the interface's words.
func keyReused(msg string) string {
	msg = strings.ReplaceAll(msg, "request_id", open311.IdempotencyKeyHeader)
	for field, name := range fieldNames {
		msg = strings.Replace(msg, "different "+field+";", "different "+name+";", 1)
	}
	return msg
}

// fromStatus maps a service's answer to the interface's errors: a refused field is the caller's
// to mend, named as the specification names it.
func fromStatus(err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch s.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition:
		return open311.Refuse(open311.ErrInvalid, "%s", asOpen311(s.Message()))
	case codes.Unauthenticated, codes.PermissionDenied:
		return open311.Refuse(open311.ErrForbidden, "%s", s.Message())
	case codes.NotFound:
		return open311.Refuse(open311.ErrNotFound, "%s", s.Message())
	case codes.ResourceExhausted:
		return open311.Refuse(open311.ErrRateLimit, "%s", s.Message())
	}
	return err
}
