package domain

import (
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// Issue is what routing knows of an issue: enough to route it, and whether it was routed.
type Issue struct {
	// LastSeq is the stream sequence of the issue's last event applied.
	LastSeq uint64 `json:"last_seq"`
	// Quarantine is set once routing met an event of the issue that can never apply.
	Quarantine    *quarantine.Mark `json:"quarantine,omitempty"`
	Grid          string           `json:"grid,omitempty"`
	Street        string           `json:"street,omitempty"`
	Category      string           `json:"category,omitempty"`
	Urgency       int32            `json:"urgency,omitempty"` // a whistlev1.Urgency value
	Text          string           `json:"text,omitempty"`
	CorrelationID string           `json:"correlation_id,omitempty"`
	Raised        bool             `json:"raised,omitempty"`
	// RaisedSeq and RaisedAt are the raise's sequence and the time the stream stored it: every
	// deadline runs from then.
	RaisedSeq     uint64    `json:"raised_seq,omitempty"`
	RaisedAt      time.Time `json:"raised_at,omitzero"`
	Routed        bool      `json:"routed,omitempty"`
	RuleID        string    `json:"rule_id,omitempty"`
	RulesVersion  string    `json:"rules_version,omitempty"`
	NeedsDispatch bool      `json:"needs_dispatch,omitempty"`
}

// Position returns the issue's place in the stream, for the projection store.
func (i *Issue) Position() (*uint64, **quarantine.Mark) { return &i.LastSeq, &i.Quarantine }

// AwaitsDecision reports whether routing still has to route the issue or hand it to a dispatcher.
func (i Issue) AwaitsDecision() bool {
	return i.Raised && !i.Routed && !i.NeedsDispatch && i.Quarantine == nil
}

// Case is what the rules see of the issue.
func (i Issue) Case() Case {
	return Case{Grid: i.Grid, Category: i.Category, Urgency: whistlev1.Urgency(i.Urgency), Text: i.Text, At: i.RaisedAt}
}
