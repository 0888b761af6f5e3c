package domain

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
