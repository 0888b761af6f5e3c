// Package quarantine describes an issue that a projection stopped applying because one of its
// events can never apply. It has no dependencies, so that a service's domain state can carry the
// mark beside its own fields and every view built on that state can show it.
package quarantine

import "time"

// Mark is a projection's record of the first event of an issue it could never apply. Events of the
// issue stored after that one are held: the projection moves past them, so that nothing behind
// them waits, but it does not apply them, since a state built over a missing event would lie.
type Mark struct {
	// Seq is the stream sequence of the event that could not apply.
	Seq uint64 `json:"seq"`
	// Subject is the subject it was stored on.
	Subject string `json:"subject"`
	// Reason says why it can never apply.
	Reason string `json:"reason"`
	// StoredAt is when the stream stored it.
	StoredAt time.Time `json:"stored_at"`
	// Held counts the later events the projection moved past without applying.
	Held int `json:"held,omitempty"`
}

// Clone returns a copy of the mark, nil for none: a state's copy must not share the mark a later
// fold changes (Held).
func (m *Mark) Clone() *Mark {
	if m == nil {
		return nil
	}
	c := *m
	return &c
}
