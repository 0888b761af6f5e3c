// Package domain is the intake view of an issue: what was raised, where it stands, which
// departments were summoned and what each did, and the timeline of everything that happened.
// The view changes only by applying the issue's events in stream order, so it is a pure function
// of the stream; this package holds those rules and the checks on a raise, and knows nothing of
// protobuf or Redis. The rules of each department's part (its assignment) are the assignment
// machine's, in services/internal/assignment.
package domain

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// Limits on what a request may carry.
const (
	MaxTextLength    = 2000
	MaxAddressLength = 200
	// MaxContactLength bounds each field of a resident's contact.
	MaxContactLength = 100
	// MaxMediaURLLength bounds the URL of an integrator's photo or video.
	MaxMediaURLLength  = 2000
	MaxRequestIDLength = apiedge.MaxRequestIDLength
)

// ErrNotFound means no issue has the case number.
var ErrNotFound = errors.New("no such issue")

// ErrCaseTaken means the case number derived from a request is already an issue raised by another
// request: two idempotency keys hashed to one case number.
var ErrCaseTaken = errors.New("the case number is taken by another request; retry with a new request_id")

// RequestReusedError means a request id that already raised an issue came back with a different
// raise: a retry must repeat its request exactly, so the caller either reused a key for a new
// issue or edited the request before retrying. Answering the first issue would drop what changed
// without a word, as a payment API taking a reused idempotency key for a new charge would.
type RequestReusedError struct {
	RequestID string // the reused key
	Case      string // the case number the key raised first
	Field     string // the first request field that differs from that raise
}

// Error names the first case and the field that differs, which reads as the status message.
func (e *RequestReusedError) Error() string {
	return fmt.Sprintf("request_id %q already raised case %s with a different %s; retry with the same request, or raise a new issue with a new request_id",
		e.RequestID, e.Case, e.Field)
}

// Status is where an issue stands as a whole.
type Status string

// The issue statuses, in the order an issue usually moves through them.
const (
	StatusRaised           Status = "raised"
	StatusAwaitingDispatch Status = "awaiting-dispatch"
	StatusDispatched       Status = "dispatched"
	StatusInProgress       Status = "in-progress"
	StatusResolved         Status = "resolved"
	StatusLinked           Status = "linked"
	// StatusClosed: verified on site, or closed unverified after the time the city allows.
	StatusClosed Status = "closed"
)

// Verification is the grid worker's check on site of a resolved issue.
type Verification struct {
	Passed bool      `json:"passed"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Rating is the raiser's judgement of how the issue was handled.
type Rating struct {
	Score    int       `json:"score"`
	Comment  string    `json:"comment,omitempty"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Reopened bool      `json:"reopened,omitempty"`
}

// Urgency says how fast an issue must be handled.
type Urgency string

// The urgencies.
const (
	UrgencyNormal    Urgency = "normal"
	UrgencyUrgent    Urgency = "urgent"
	UrgencyEmergency Urgency = "emergency"
)

// Location is where on the ground an issue is.
type Location struct {
	Latitude  float64 `json:"lat"`
	Longitude float64 `json:"lon"`
	Address   string  `json:"address,omitempty"`
	// PlacedByAddress says the raiser gave the address alone: the point is the centre of the
	// compound it names (catalog.PlaceOfAddress), not where anyone stood.
	PlacedByAddress bool `json:"by_address,omitempty"`
}

// Channel is how an issue reached Whistle.
type Channel string

// The channels.
const (
	// ChannelGrid is a raise by the city's own staff, a grid worker as a rule.
	ChannelGrid Channel = "grid"
	// ChannelOpen311 is a raise by an integrator through Open311, on a resident's or an
	// enterprise's behalf; RaisedBy names the integrator.
	ChannelOpen311 Channel = "open311"
)

// Contact is how to reach the resident or enterprise an integrator raised an issue for. It is
// personal: the views show it to the city's staff only.
type Contact struct {
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	DeviceID  string `json:"device_id,omitempty"`
	AccountID string `json:"account_id,omitempty"`
}

// Entry is one event of the issue's history, told for people.
type Entry struct {
	Seq          uint64    `json:"seq"`
	At           time.Time `json:"at"`
	Kind         string    `json:"kind"`
	Actor        string    `json:"actor"`
	DepartmentID string    `json:"department,omitempty"`
	UnitID       string    `json:"unit,omitempty"`
	Summary      string    `json:"summary"`
}

// Issue is the intake view of one issue with its timeline. LastSeq is the stream sequence of the
// last event applied, which makes applying idempotent.
type Issue struct {
	ID          string    `json:"id"`
	RequestID   string    `json:"request_id"`
	GridID      string    `json:"grid"`
	CommunityID string    `json:"community"`
	StreetID    string    `json:"street"`
	CategoryID  string    `json:"category"`
	Urgency     Urgency   `json:"urgency"`
	Text        string    `json:"text"`
	Location    *Location `json:"location,omitempty"`
	CompoundID  string    `json:"compound,omitempty"`
	// LinkedTo is the case this issue joined as a duplicate; Duplicates, the ones that joined it.
	LinkedTo   string   `json:"linked_to,omitempty"`
	Duplicates []string `json:"duplicates,omitempty"`
	Status     Status   `json:"status"`
	RaisedBy   string   `json:"raised_by"`
	// Channel is how it was raised; Contact and MediaURL come with a raise through Open311.
	Channel   Channel   `json:"channel,omitempty"`
	Contact   *Contact  `json:"contact,omitempty"`
	MediaURL  string    `json:"media_url,omitempty"`
	RaisedAt  time.Time `json:"raised_at"`
	UpdatedAt time.Time `json:"updated_at"`
	RuleID    string    `json:"rule,omitempty"`
	// RulesVersion is the version of the rules and catalog that decided the last route.
	RulesVersion string `json:"rules_version,omitempty"`
	// Photos are the photos attached at the raise.
	Photos []evidence.Photo `json:"photos,omitempty"`
	// NamedPhotos are the ids of every photo an event of the issue named, at its raise and at
	// every resolution, those of a part since reopened included: who may see the issue may fetch
	// them.
	NamedPhotos []string                 `json:"named_photos,omitempty"`
	Assignments []*assignment.Assignment `json:"assignments,omitempty"`
	Timeline    []Entry                  `json:"timeline"`
	LastSeq     uint64                   `json:"last_seq"`
	// Quarantine is set once intake met an event of the issue that can never apply; the view
	// stays as it was before that event.
	Quarantine *quarantine.Mark `json:"quarantine,omitempty"`
	// ResolvedAt is when every part was last resolved (the wait for verification began); zero
	// unless the issue is resolved.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// ClosedAt is when it closed; zero while it is open.
	ClosedAt     time.Time     `json:"closed_at,omitzero"`
	Verification *Verification `json:"verification,omitempty"`
	Rating       *Rating       `json:"rating,omitempty"`
	// Reopened counts the reopenings; RatingReopened says a rating reopened it (allowed once).
	Reopened       int  `json:"reopened,omitempty"`
	RatingReopened bool `json:"rating_reopened,omitempty"`
}

// Lead returns the lead's part, or nil when the issue has none.
func (is *Issue) Lead() *assignment.Assignment {
	for _, a := range is.Assignments {
		if a.Role == assignment.Lead && a.Status != assignment.Withdrawn && a.Status != assignment.Returned {
			return a
		}
	}
	return nil
}

// Position returns the issue's place in the stream, for the projection store.
func (is *Issue) Position() (*uint64, **quarantine.Mark) { return &is.LastSeq, &is.Quarantine }

// Raised tells whether the issue's raise has been applied; events of an issue that was never
// raised leave a view that no one can see.
func (is *Issue) Raised() bool { return !is.RaisedAt.IsZero() }

// Areas are the ids of the areas the issue sits in, from the grid up to the city.
func (is *Issue) Areas(city string) []string {
	return []string{is.GridID, is.CommunityID, is.StreetID, city}
}

// Assignment returns the unit's assignment, or nil when it was not summoned.
func (is *Issue) Assignment(unitID string) *assignment.Assignment {
	for _, a := range is.Assignments {
		if a.Unit() == unitID {
			return a
		}
	}
	return nil
}

// Raise is the content of a raise, as checked by the caller and stored in the raised event.
type Raise struct {
	RequestID, RaisedBy           string
	GridID, CommunityID, StreetID string
	CategoryID                    string
	Urgency                       Urgency
	Text                          string
	Location                      *Location
	// CompoundID is the residential compound the point lies in, if any.
	CompoundID string
	// PhotoIDs are the photos the request names; Photos, the same once claimed for the case (and
	// as the raised event stored them).
	PhotoIDs []string
	Photos   []evidence.Photo
	// Channel is how it was raised, from the raiser's role (set as the raise is applied);
	// Contact and MediaURL are what an integrator gives for the resident it raises for.
	Channel  Channel
	Contact  *Contact
	MediaURL string
}

// DiffersFrom names the first request field in which the raise differs from an issue raised
// before, or returns "" when it is the same raise. Both sides are as checked and stored: ids
// resolved, text trimmed.
func (r Raise) DiffersFrom(is *Issue) string {
	switch {
	case r.GridID != is.GridID:
		return "grid_id"
	case r.CategoryID != is.CategoryID:
		return "category_id"
	case r.Urgency != is.Urgency:
		return "urgency"
	case r.Text != is.Text:
		return "text"
	case (r.Location == nil) != (is.Location == nil) || r.Location != nil && *r.Location != *is.Location:
		return "location"
	case !slices.Equal(r.PhotoIDs, evidence.IDs(is.Photos)):
		return "photo_ids"
	case (r.Contact == nil) != (is.Contact == nil) || r.Contact != nil && *r.Contact != *is.Contact:
		return "contact"
	case r.MediaURL != is.MediaURL:
		return "media_url"
	}
	return ""
}
