// Package open311 serves the Open311 GeoReport v2 interface (https://wiki.open311.org/GeoReport_v2)
// under /open311/v2/: the city's categories as services, and service requests that become raised
// issues. It speaks the specification's field names, formats (.json and .xml), status values and
// error format, and reaches Whistle only through a Backend, which the gateway implements on the
// services' public gRPC APIs.
package open311

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Backend is what the interface needs of Whistle. Every method's error is either one of the
// sentinel errors below (wrapped, with a message for people) or a failure of Whistle itself.
type Backend interface {
	// Integrator returns the name of the integrator whose API key this is, or ErrForbidden.
	Integrator(ctx context.Context, apiKey string) (string, error)
	// Services lists the categories a request may name, in the catalog's order.
	Services(ctx context.Context) ([]Service, error)
	// Definition is one service's definition, or ErrNotFound.
	Definition(ctx context.Context, code string) (Definition, error)
	// Raise raises the request as an issue on the integrator's behalf (apiKey is the key
	// Integrator accepted). A bad field is ErrInvalid naming it; a place in no grid is ErrInvalid;
	// an idempotency key the integrator used for another request is ErrKeyReused.
	Raise(ctx context.Context, apiKey string, r NewRequest) (Receipt, error)
	// Request is one service request by its id (the case number), or ErrNotFound.
	Request(ctx context.Context, id string) (Request, error)
	// Requests lists the requests that match q, newest first, at most q.Limit.
	Requests(ctx context.Context, q Query) ([]Request, error)
	// Token returns the id of the request the token was given for, or ErrNotFound.
	Token(ctx context.Context, token string) (string, error)
}

// The errors a Backend answers, each with the specification's HTTP status.
var (
	ErrInvalid   = errors.New("invalid request")   // 400
	ErrForbidden = errors.New("invalid api_key")   // 403
	ErrNotFound  = errors.New("not found")         // 404
	ErrRateLimit = errors.New("too many requests") // 429
	// ErrKeyReused is an Idempotency-Key sent again with a different request (422, as the IETF's
	// Idempotency-Key header draft answers it).
	ErrKeyReused = errors.New("idempotency key reused")
)

// IdempotencyKeyHeader is the header with which a client makes a POST safe to send again: the same
// key and request answer the first request's receipt and raise nothing more, so an integrator
// whose connection dropped before the answer retries without raising twice. The specification
// has no such field; a client that knows only the specification sends none, and each of its POSTs
// raises.
const IdempotencyKeyHeader = "Idempotency-Key"

// Service is one category as the specification's service list shows it.
type Service struct {
	Code        string
	Name        string
	Description string
	Metadata    bool // true when the service has attributes to fetch with its definition
	Type        string
	Keywords    []string
	Group       string
}

// Definition is a service's definition: its attributes.
type Definition struct {
	Code       string
	Attributes []Attribute
}

// Attribute is one question a request of the service answers.
type Attribute struct {
	Variable            bool
	Code                string
	Datatype            string // string, number, datetime, text, singlevaluelist, multivaluelist
	Required            bool
	DatatypeDescription string
	Order               int
	Description         string
	Values              []AttributeValue
}

// AttributeValue is one choice of a list attribute.
type AttributeValue struct {
	Key  string
	Name string
}

// NewRequest is a POSTed service request, as the specification names its fields.
type NewRequest struct {
	ServiceCode   string
	Lat, Long     float64
	HasPoint      bool // lat and long were both given
	AddressString string
	AddressID     string
	Email         string
	DeviceID      string
	AccountID     string
	FirstName     string
	LastName      string
	Phone         string
	Description   string
	MediaURL      string
	Attributes    map[string][]string // attribute[code]=value; a multivaluelist has several
	// IdempotencyKey is the POST's Idempotency-Key header; empty when it sent none.
	IdempotencyKey string
}

// Receipt is what a POST answers.
type Receipt struct {
	ServiceRequestID string
	Token            string
	ServiceNotice    string
	AccountID        string
}

// Request is one service request as the specification shows it.
type Request struct {
	ServiceRequestID  string
	Status            string // open or closed
	StatusNotes       string
	ServiceName       string
	ServiceCode       string
	Description       string
	AgencyResponsible string
	ServiceNotice     string
	RequestedDatetime time.Time
	UpdatedDatetime   time.Time
	ExpectedDatetime  time.Time // zero when there is none yet
	Address           string
	AddressID         string
	Zipcode           string
	Lat, Long         float64
	HasPoint          bool
	MediaURL          string
}

// Query is a GET of requests with the specification's filters.
type Query struct {
	IDs         []string  // service_request_id, comma-separated; when given, the other filters are ignored
	ServiceCode string    // service_code
	Start, End  time.Time // start_date and end_date; zero when not given
	Status      string    // open, closed or empty for both
	Limit       int
}

// Refuse returns an error of kind, one of the sentinel errors above, whose message is the
// description people read alone, without the sentinel's words.
func Refuse(kind error, format string, args ...any) error {
	return refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// refusal is a Backend's refusal: its message for people, and the sentinel it is.
type refusal struct {
	kind error
	msg  string
}

func (r refusal) Error() string { return r.msg }
func (r refusal) Unwrap() error { return r.kind }
