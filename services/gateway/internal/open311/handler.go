package open311

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
)

// Prefix is the path the handler serves; mount it with mux.Handle(Prefix, h).
const Prefix = "/open311/v2/"

// Limits of a GET of requests.
const (
	// MaxResults is the most requests one GET of requests answers: the specification's
	// "first 1000 requests".
	MaxResults = 1000
	// DefaultWindow is the span of requested_datetime a GET of requests covers when it does
	// not give both dates: the specification's "most recent 90 days".
	DefaultWindow = 90 * 24 * time.Hour
)

// MaxBodyBytes is the largest request body the handler reads. A service request is a few
// short fields; media travel by media_url, not in the body.
const MaxBodyBytes = 64 << 10

// tooLarge is the description of a 413.
var tooLarge = fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes)

// The longest text fields, counted in characters (runes), not bytes.
const (
	// MaxDescriptionLen bounds description. The specification allows 4,000; the city's
	// dispatchers read the whole text, so Whistle keeps it shorter.
	MaxDescriptionLen = 2000
	// MaxNameLen bounds first_name and last_name.
	MaxNameLen = 100
	// MaxEmailLen bounds email: the longest address SMTP can carry (RFC 5321).
	MaxEmailLen = 254
	// MaxPhoneLen bounds phone, which leaves room for a country code, spaces and an extension.
	MaxPhoneLen = 32
	// MaxDeviceIDLen bounds device_id.
	MaxDeviceIDLen = 128
	// MaxAccountIDLen bounds account_id.
	MaxAccountIDLen = 128
	// MaxAddressStringLen bounds address_string.
	MaxAddressStringLen = 500
	// MaxAddressIDLen bounds address_id.
	MaxAddressIDLen = 128
	// MaxMediaURLLen bounds media_url: the length most browsers and servers handle.
	MaxMediaURLLen = 2048
	// MaxCodeLen bounds a service_code and an attribute's code.
	MaxCodeLen = 64
	// MaxAttributeValueLen bounds each value of an attribute[code].
	MaxAttributeValueLen = 500
	// MaxIDLen bounds a service_request_id or a token.
	MaxIDLen = 128
)

// Rate limits. A bucket refills at its rate and holds at most its burst.
const (
	// KeyRate is how many calls per second an integrator may make with its api_keys.
	KeyRate rate.Limit = 10
	// KeyBurst is how many calls an integrator may make at once.
	KeyBurst = 20
	// AnonymousRate is how many calls per second one address may make without an api_key
	// (or with a wrong one).
	AnonymousRate rate.Limit = 5
	// AnonymousBurst is how many calls one address may make at once without an api_key.
	AnonymousBurst = 30
	// LimiterIdle is how long a bucket goes unused before it is forgotten. A bucket idle that
	// long has long been full again, so forgetting it changes nothing for its caller.
	LimiterIdle = 10 * time.Minute
)

// Options configure the handler.
type Options struct {
	// Jurisdiction is the jurisdiction_id this endpoint serves (the specification suggests
	// the city's web domain). A call naming another jurisdiction_id is refused; when it is
	// empty, the endpoint serves one city and takes whatever jurisdiction_id a client sends.
	Jurisdiction string
	// Contact is the discovery document's contact: how people reach the API's maintainers.
	Contact string
	// KeyService is the discovery document's key_service: how an integrator gets an api_key.
	KeyService string
	// Location is the city's time zone, in which datetimes are written; nil means time.Local.
	Location *time.Location
	// Now tells the time for the default window of a GET of requests, the rate limits and
	// the discovery changeset; nil means time.Now.
	Now func() time.Time
	// Logger records the failures of Whistle that callers only see as "internal error";
	// nil means slog.Default().
	Logger *slog.Logger
	// Limiter keeps the rate limits; nil keeps them in this process, so that each process counts
	// alone. Processes that serve one city side by side share one, so that a client cannot
	// multiply its limit by their number.
	Limiter Limiter
}

// Limiter keeps rate limits by bucket name, each bucket allowing rate calls a second with bursts
// of burst.
type Limiter interface {
	// Take spends one call of the named bucket. It answers 0 when the call may go ahead, or else
	// how long until it could.
	Take(ctx context.Context, name string, rate rate.Limit, burst int) (time.Duration, error)
}

// NewHandler returns the Open311 GeoReport v2 interface, answering the paths under Prefix
// from b.
func NewHandler(b Backend, opts Options) http.Handler {
	h := &handler{
		backend: b,
		opts:    opts,
		loc:     opts.Location,
		now:     opts.Now,
		log:     opts.Logger,
		limits:  opts.Limiter,
	}
	if h.limits == nil {
		h.limits = &limiters{buckets: make(map[string]*bucket), now: opts.Now}
	}
	if h.loc == nil {
		h.loc = time.Local
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	// Discovery's changeset tells clients when to refresh what they cached of the services.
	// The catalog is loaded when the gateway starts, so its start is that moment. UTC keeps
	// the string sortable, as the specification asks.
	h.changeset = h.now().UTC().Format(time.RFC3339)
	return h
}

type handler struct {
	backend   Backend
	opts      Options
	loc       *time.Location
	now       func() time.Time
	log       *slog.Logger
	changeset string
	limits    Limiter
}

// call is one request being answered: the exchange, the format its path asked for, the
// id its path names (if any) and its api_key.
type call struct {
	w   http.ResponseWriter
	r   *http.Request
	f   format
	id  string
	key string
}

// resource is what a path names, before its format.
type resource struct {
	name string // discovery, services, requests or tokens
	id   string // the service_code, service_request_id or token in the path; "" for a list
}

// methods are the methods the resource answers, or nil when there is no such resource.
func (res resource) methods() []string {
	get := []string{http.MethodGet, http.MethodHead}
	switch res.name {
	case "discovery":
		if res.id == "" {
			return get
		}
	case "services":
		return get
	case "requests":
		if res.id == "" {
			return append(get, http.MethodPost)
		}
		return get
	case "tokens":
		if res.id != "" {
			return get
		}
	}
	return nil
}

// ServeHTTP answers one call: it finds the resource and format, checks the method, reads the
// parameters, admits the caller (api_key and rate limit), checks the jurisdiction and only then
// asks the Backend.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r, f: formatJSON}
	res, f, ok := parsePath(r.URL)
	if !ok {
		// Without a format the path asked for, errors are answered in JSON.
		h.fail(c, http.StatusNotFound, "not found: paths end in .json or .xml")
		return
	}
	c.f, c.id = f, res.id
	methods := res.methods()
	if methods == nil {
		h.fail(c, http.StatusNotFound, "not found: "+r.URL.Path)
		return
	}
	if !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		h.fail(c, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here")
		return
	}
	if !h.readForm(c) {
		return
	}
	c.key = strings.TrimSpace(r.Form.Get("api_key"))
	if !h.admit(c, r.Method == http.MethodPost) {
		return
	}
	// The specification answers a jurisdiction_id it does not know with 404: the
	// jurisdiction is a resource this endpoint does not have, not a malformed request. An
	// empty jurisdiction_id counts as not given, as optional arguments do.
	if j := strings.TrimSpace(r.Form.Get("jurisdiction_id")); j != "" && h.opts.Jurisdiction != "" && !strings.EqualFold(j, h.opts.Jurisdiction) {
		h.fail(c, http.StatusNotFound, "unknown jurisdiction_id")
		return
	}
	switch {
	case res.name == "discovery":
		h.discovery(c)
	case res.name == "services" && res.id == "":
		h.services(c)
	case res.name == "services":
		h.definition(c)
	case res.name == "requests" && res.id == "" && r.Method == http.MethodPost:
		h.raise(c)
	case res.name == "requests" && res.id == "":
		h.requests(c)
	case res.name == "requests":
		h.request(c)
	case res.name == "tokens":
		h.token(c)
	}
}

// parsePath splits a path under Prefix into the resource it names and its format. It
// answers ok false when the path is not under Prefix or has no known format.
func parsePath(u *url.URL) (resource, format, bool) {
	// The escaped path keeps an id's %2F from splitting it in two.
	rest, ok := strings.CutPrefix(u.EscapedPath(), Prefix)
	if !ok {
		return resource{}, "", false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 || dot < strings.LastIndexByte(rest, '/') {
		return resource{}, "", false
	}
	f, ok := parseFormat(rest[dot+1:])
	if !ok {
		return resource{}, "", false
	}
	// A path that names nothing is answered as the zero resource: a 404 in the format it asked for.
	parts := strings.Split(rest[:dot], "/")
	switch len(parts) {
	case 1:
		return resource{name: parts[0]}, f, true
	case 2:
		id, err := url.PathUnescape(parts[1])
		if err != nil || id == "" {
			return resource{}, f, true
		}
		return resource{name: parts[0], id: id}, f, true
	}
	return resource{}, f, true
}

// readForm reads the query and, for a POST, the form in the body. On failure it writes the
// refusal and answers false.
func (h *handler) readForm(c *call) bool {
	r := c.r
	if r.ContentLength > MaxBodyBytes {
		h.fail(c, http.StatusRequestEntityTooLarge, tooLarge)
		return false
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(c.w, r.Body, MaxBodyBytes)
	}
	var err error
	if r.Method == http.MethodPost {
		mediaType := ""
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mediaType, _, err = mime.ParseMediaType(ct)
		}
		switch {
		case err == nil && mediaType == "multipart/form-data":
			err = r.ParseMultipartForm(MaxBodyBytes)
			if r.MultipartForm != nil {
				// Files are not part of GeoReport v2; drop any that were spooled to disk.
				defer r.MultipartForm.RemoveAll()
			}
		case err == nil && (mediaType == "application/x-www-form-urlencoded" || mediaType == ""):
			err = r.ParseForm()
		default:
			h.fail(c, http.StatusBadRequest, "Content-Type must be application/x-www-form-urlencoded or multipart/form-data")
			return false
		}
	} else {
		err = r.ParseForm()
	}
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		h.fail(c, http.StatusRequestEntityTooLarge, tooLarge)
		return false
	case err != nil:
		h.fail(c, http.StatusBadRequest, "the parameters could not be read: "+err.Error())
		return false
	}
	return true
}

// admit checks the call's api_key, when it has one or must have one, and spends one call
// of its rate limit. On refusal it writes the answer and answers false.
func (h *handler) admit(c *call, keyRequired bool) bool {
	if c.key == "" {
		if !h.allow(c, "ip "+clientAddress(c.r), AnonymousRate, AnonymousBurst) {
			return false
		}
		if keyRequired {
			h.fail(c, http.StatusForbidden, "api_key is required")
			return false
		}
		return true
	}
	integrator, err := h.backend.Integrator(c.r.Context(), c.key)
	if err != nil {
		// A wrong key is charged to its address, so guessing keys is no faster than calling
		// anonymously.
		if errors.Is(err, ErrForbidden) && !h.allow(c, "ip "+clientAddress(c.r), AnonymousRate, AnonymousBurst) {
			return false
		}
		h.failBackend(c, err)
		return false
	}
	// Per integrator, not per key: issuing more keys does not raise the limit.
	return h.allow(c, "key "+integrator, KeyRate, KeyBurst)
}

// allow spends one call of the named bucket, or writes 429 with Retry-After and answers false.
func (h *handler) allow(c *call, bucket string, r rate.Limit, burst int) bool {
	wait, err := h.limits.Take(c.r.Context(), bucket, r, burst)
	if err != nil {
		// A limit protects Whistle; it decides nothing, so a call is let through while the
		// limits cannot be read rather than refused.
		h.log.WarnContext(c.r.Context(), "open311: the rate limit could not be kept", "bucket", bucket, "err", err)
		return true
	}
	if wait <= 0 {
		return true
	}
	seconds := int(math.Ceil(wait.Seconds()))
	c.w.Header().Set("Retry-After", strconv.Itoa(seconds))
	h.fail(c, http.StatusTooManyRequests, fmt.Sprintf("too many requests: retry after %s", time.Duration(seconds)*time.Second))
	return false
}

// clientAddress is the address the rate limit of an anonymous call is kept by: the
// connection's peer. X-Forwarded-For is not trusted, since any client can write it.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		// One IPv6 subscriber holds a whole /64; counting single addresses would let it
		// change address for every call.
		return netip.PrefixFrom(addr.WithZone(""), 64).Masked().String()
	}
	return addr.String()
}

// limiters are the rate-limit buckets of one process by name, each forgotten after LimiterIdle
// unused.
type limiters struct {
	now       func() time.Time // nil means time.Now
	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

// Take spends one call of the named bucket now.
func (l *limiters) Take(_ context.Context, name string, r rate.Limit, burst int) (time.Duration, error) {
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	return l.take(name, r, burst, now), nil
}

type bucket struct {
	limiter *rate.Limiter
	used    time.Time
}

// take spends one call of the named bucket at now, making the bucket if it is new. It
// answers 0 when the call may go ahead, or else how long until it could.
func (l *limiters) take(name string, r rate.Limit, burst int, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[name]
	if b == nil {
		b = &bucket{limiter: rate.NewLimiter(r, burst)}
		l.buckets[name] = b
	}
	b.used = now
	if b.limiter.AllowN(now, 1) {
		return 0
	}
	missing := 1 - b.limiter.TokensAt(now)
	return time.Duration(missing / float64(r) * float64(time.Second))
}

// sweep forgets the buckets unused for LimiterIdle. It looks at most once per LimiterIdle,
// so the cost of a call stays constant on average.
func (l *limiters) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < LimiterIdle {
		return
	}
	for name, b := range l.buckets {
		if now.Sub(b.used) >= LimiterIdle {
			delete(l.buckets, name)
		}
	}
	l.lastSweep = now
}

func (h *handler) discovery(c *call) {
	h.ok(c, discoveryDocument(h.changeset, h.opts.Contact, h.opts.KeyService, baseURL(c.r)))
}

// baseURL is this endpoint's URL as the client reached it. X-Forwarded-Proto is trusted for
// the scheme alone: a proxy that ends TLS sets it, and a forged one only misleads its sender.
func baseURL(r *http.Request) string {
	scheme := "http"
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	if r.TLS != nil || strings.EqualFold(strings.TrimSpace(proto), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + Prefix
}

func (h *handler) services(c *call) {
	list, err := h.backend.Services(c.r.Context())
	if err != nil {
		h.failBackend(c, err)
		return
	}
	h.ok(c, servicesDocument(list))
}

func (h *handler) definition(c *call) {
	if err := checkText("service_code", c.id, MaxCodeLen); err != nil {
		h.fail(c, http.StatusBadRequest, err.Error())
		return
	}
	d, err := h.backend.Definition(c.r.Context(), c.id)
	if err != nil {
		h.failBackend(c, err)
		return
	}
	h.ok(c, definitionDocument(d))
}

func (h *handler) raise(c *call) {
	nr, problems := parseNewRequest(c.r.Form)
	if key, sent := c.r.Header[IdempotencyKeyHeader]; sent {
		nr.IdempotencyKey = strings.Join(key, ",")
		if err := apiedge.CheckRequestID(IdempotencyKeyHeader, nr.IdempotencyKey); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		h.fail(c, http.StatusBadRequest, problems...)
		return
	}
	receipt, err := h.backend.Raise(c.r.Context(), c.key, nr)
	if err != nil {
		h.failBackend(c, err)
		return
	}
	h.ok(c, receiptDocument(receipt))
}

func (h *handler) requests(c *call) {
	q, problems := parseQuery(c.r.Form, h.now())
	if len(problems) > 0 {
		h.fail(c, http.StatusBadRequest, problems...)
		return
	}
	list, err := h.backend.Requests(c.r.Context(), q)
	if err != nil {
		h.failBackend(c, err)
		return
	}
	if len(list) > q.Limit {
		list = list[:q.Limit]
	}
	h.ok(c, requestsDocument(list, h.loc))
}

func (h *handler) request(c *call) {
	if err := checkText("service_request_id", c.id, MaxIDLen); err != nil {
		h.fail(c, http.StatusBadRequest, err.Error())
		return
	}
	req, err := h.backend.Request(c.r.Context(), c.id)
	if err != nil {
		h.failBackend(c, err)
		return
	}
	h.ok(c, requestsDocument([]Request{req}, h.loc))
}

func (h *handler) token(c *call) {
	if err := checkText("token", c.id, MaxIDLen); err != nil {
		h.fail(c, http.StatusBadRequest, err.Error())
		return
	}
	id, err := h.backend.Token(c.r.Context(), c.id)
	if err != nil {
		h.failBackend(c, err)
		return
	}
	h.ok(c, tokenDocument(id, c.id))
}

// parseNewRequest reads a POSTed service request and checks every field, answering what is
// wrong with it, one sentence a problem, each naming its field.
func parseNewRequest(form url.Values) (NewRequest, []string) {
	var nr NewRequest
	var problems []string
	texts := []struct {
		name string
		max  int
		dst  *string
	}{
		{"service_code", MaxCodeLen, &nr.ServiceCode},
		{"address_string", MaxAddressStringLen, &nr.AddressString},
		{"address_id", MaxAddressIDLen, &nr.AddressID},
		{"email", MaxEmailLen, &nr.Email},
		{"device_id", MaxDeviceIDLen, &nr.DeviceID},
		{"account_id", MaxAccountIDLen, &nr.AccountID},
		{"first_name", MaxNameLen, &nr.FirstName},
		{"last_name", MaxNameLen, &nr.LastName},
		{"phone", MaxPhoneLen, &nr.Phone},
		{"description", MaxDescriptionLen, &nr.Description},
		{"media_url", MaxMediaURLLen, &nr.MediaURL},
	}
	given := func(name string) bool { return strings.TrimSpace(form.Get(name)) != "" }
	for _, t := range texts {
		v := strings.TrimSpace(form.Get(t.name))
		if err := checkText(t.name, v, t.max); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		*t.dst = v
	}
	if !given("service_code") {
		problems = append(problems, "service_code is required")
	}
	if nr.MediaURL != "" && !isWebURL(nr.MediaURL) {
		problems = append(problems, "media_url must be an absolute http or https URL")
	}

	lat, long := strings.TrimSpace(form.Get("lat")), strings.TrimSpace(form.Get("long"))
	switch {
	case lat == "" && long == "":
		if !given("address_string") && !given("address_id") {
			problems = append(problems, "a location is required: lat and long, address_string or address_id")
		}
	case lat == "":
		problems = append(problems, "lat is required when long is given")
	case long == "":
		problems = append(problems, "long is required when lat is given")
	default:
		var latOK, longOK bool
		nr.Lat, latOK = parseCoordinate(lat, 90)
		nr.Long, longOK = parseCoordinate(long, 180)
		if !latOK {
			problems = append(problems, "lat must be a number between -90 and 90")
		}
		if !longOK {
			problems = append(problems, "long must be a number between -180 and 180")
		}
		nr.HasPoint = latOK && longOK
	}

	attributes, attributeProblems := parseAttributes(form)
	problems = append(problems, attributeProblems...)
	nr.Attributes = attributes
	if len(problems) > 0 {
		return NewRequest{}, problems
	}
	return nr, nil
}

// parseCoordinate reads a latitude or longitude, finite and within ±limit.
func parseCoordinate(s string, limit float64) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > limit {
		return 0, false
	}
	return v, true
}

// isWebURL reports whether s is an absolute http or https URL with a host.
func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// parseAttributes reads the attribute[code]=value and attribute[code][]=value parameters.
// Empty values count as not given; a request with no attributes has a nil map.
func parseAttributes(form url.Values) (map[string][]string, []string) {
	var names []string
	for name := range form {
		if strings.HasPrefix(name, "attribute[") {
			names = append(names, name)
		}
	}
	// Sorted, so that the values of attribute[c] and attribute[c][] always join in one order.
	sort.Strings(names)
	var attributes map[string][]string
	var problems []string
	for _, name := range names {
		code, suffix, found := strings.Cut(strings.TrimPrefix(name, "attribute["), "]")
		if !found || code == "" || (suffix != "" && suffix != "[]") {
			problems = append(problems, fmt.Sprintf("attribute parameter %q must be attribute[code] or attribute[code][]", name))
			continue
		}
		field := "attribute[" + code + "]"
		if err := checkText(field, code, MaxCodeLen); err != nil {
			problems = append(problems, "the code of "+err.Error())
			continue
		}
		for _, v := range form[name] {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			if err := checkText(field, v, MaxAttributeValueLen); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			if attributes == nil {
				attributes = make(map[string][]string)
			}
			attributes[code] = append(attributes[code], v)
		}
	}
	return attributes, problems
}

// parseQuery reads the filters of a GET of requests, filling in the specification's
// defaults, and answers what is wrong with them.
func parseQuery(form url.Values, now time.Time) (Query, []string) {
	q := Query{Limit: MaxResults}
	var problems []string
	if ids := splitList(form.Get("service_request_id")); len(ids) > 0 {
		// The specification: service_request_id overrides all other arguments.
		for _, id := range ids {
			if err := checkText("service_request_id", id, MaxIDLen); err != nil {
				problems = append(problems, err.Error())
			}
		}
		if len(ids) > MaxResults {
			problems = append(problems, fmt.Sprintf("service_request_id may name at most %d requests", MaxResults))
		}
		q.IDs = ids
		return q, problems
	}

	codes := splitList(form.Get("service_code"))
	for _, code := range codes {
		if err := checkText("service_code", code, MaxCodeLen); err != nil {
			problems = append(problems, err.Error())
		}
	}
	q.ServiceCode = strings.Join(codes, ",")

	open, closed := false, false
	for _, s := range splitList(form.Get("status")) {
		switch strings.ToLower(s) {
		case "open":
			open = true
		case "closed":
			closed = true
		default:
			problems = append(problems, "status must be open, closed or open,closed")
		}
	}
	switch {
	case open && !closed:
		q.Status = "open"
	case closed && !open:
		q.Status = "closed"
	}

	var startErr, endErr error
	q.Start, startErr = parseDatetime("start_date", form.Get("start_date"))
	q.End, endErr = parseDatetime("end_date", form.Get("end_date"))
	for _, err := range []error{startErr, endErr} {
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	if startErr != nil || endErr != nil {
		return q, problems
	}
	switch {
	case q.Start.IsZero() && q.End.IsZero():
		q.Start, q.End = now.Add(-DefaultWindow), now
	case q.Start.IsZero():
		q.Start = q.End.Add(-DefaultWindow)
	case q.End.IsZero():
		q.End = q.Start.Add(DefaultWindow)
	case q.Start.After(q.End):
		problems = append(problems, "start_date must not be after end_date")
	}
	return q, problems
}

// parseDatetime reads a W3C datetime (RFC 3339, with its offset); empty is the zero time.
func parseDatetime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s must be a W3C datetime such as 2010-01-01T00:00:00Z", field)
	}
	return t, nil
}

// splitList splits a comma-separated parameter, dropping blanks.
func splitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// checkText checks a text field: valid UTF-8, at most max characters, and no control
// characters but tabs and line breaks (they would corrupt records and logs downstream).
func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	if utf8.RuneCountInString(v) > max {
		return fmt.Errorf("%s is longer than %d characters", field, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return fmt.Errorf("%s must not contain control characters", field)
		}
	}
	return nil
}

// ok writes a 200 answer.
func (h *handler) ok(c *call, d document) {
	h.send(c, http.StatusOK, d)
}

// fail writes an error answer in the specification's format, one error a description.
func (h *handler) fail(c *call, status int, descriptions ...string) {
	h.send(c, status, errorsDocument(status, descriptions))
}

// failBackend answers an error of the Backend: its own message for the sentinel errors, and
// only "internal error" for a failure of Whistle, which is logged instead.
func (h *handler) failBackend(c *call, err error) {
	for _, known := range []struct {
		err    error
		status int
	}{
		{ErrInvalid, http.StatusBadRequest},
		{ErrForbidden, http.StatusForbidden},
		{ErrNotFound, http.StatusNotFound},
		{ErrRateLimit, http.StatusTooManyRequests},
		{ErrKeyReused, http.StatusUnprocessableEntity},
	} {
		if errors.Is(err, known.err) {
			h.fail(c, known.status, err.Error())
			return
		}
	}
	h.log.ErrorContext(c.r.Context(), "open311: backend failed", "method", c.r.Method, "path", c.r.URL.Path, "err", err)
	h.fail(c, http.StatusInternalServerError, "internal error")
}

// send encodes d in the call's format and writes it with status.
func (h *handler) send(c *call, status int, d document) {
	body, err := encode(c.f, d)
	if err != nil {
		h.log.ErrorContext(c.r.Context(), "open311: cannot encode answer", "path", c.r.URL.Path, "err", err)
		status = http.StatusInternalServerError
		if body, err = encode(c.f, errorsDocument(status, []string{"internal error"})); err != nil {
			http.Error(c.w, "internal error", status)
			return
		}
	}
	c.w.Header().Set("Content-Type", c.f.contentType())
	c.w.WriteHeader(status)
	// A failed write means the client left; there is no one to tell.
	_, _ = c.w.Write(body)
}
