package domain

import (
	"fmt"
	"unicode/utf8"
)

// Issue is what routing knows of an issue: enough to route it, and whether it was routed.
type Issue struct {
	// LastSeq is the stream sequence of the issue's last event applied.
	LastSeq       uint64 `json:"last_seq"`
	Grid          string `json:"grid,omitempty"`
	Street        string `json:"street,omitempty"`
	Category      string `json:"category,omitempty"`
	Urgency       int32  `json:"urgency,omitempty"` // a whistlev1.Urgency value
	CorrelationID string `json:"correlation_id,omitempty"`
	Raised        bool   `json:"raised,omitempty"`
	Routed        bool   `json:"routed,omitempty"`
	RuleID        string `json:"rule_id,omitempty"`
	NeedsDispatch bool   `json:"needs_dispatch,omitempty"`
}

// AwaitsDecision reports whether routing still has to route the issue or hand it to a dispatcher.
func (i Issue) AwaitsDecision() bool { return i.Raised && !i.Routed && !i.NeedsDispatch }

// MaxIDLength bounds the catalog ids a request names, so that a refusal never echoes a caller's
// megabyte back.
const MaxIDLength = 64

// FieldError is a request field that fails validation.
type FieldError struct{ Field, Problem string }

// Error reads as the status message: the field, a colon and the problem.
func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Problem) }

// CheckID checks a required id before it is looked up: present, and at most MaxIDLength
// characters.
func CheckID(field, id string) error {
	switch {
	case id == "":
		return &FieldError{Field: field, Problem: "is required"}
	case utf8.RuneCountInString(id) > MaxIDLength:
		return &FieldError{Field: field, Problem: fmt.Sprintf("must be at most %d characters", MaxIDLength)}
	}
	return nil
}
