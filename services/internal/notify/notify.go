// Package notify tells people what the event stream says concerns them: the duty officer a unit's
// assignment was pushed to, and the raiser of an issue when it changes. It follows the stream with
// a durable consumer of its own, which only queues deliveries in Redis; workers send them through a
// Notifier (a signed webhook, so that SMS gateways and messaging apps plug in without code changes),
// retrying with back-off and recording every attempt, so that a slow or failing receiver never
// holds up the event path.
package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Role says why a person receives a notification.
type Role string

// The roles.
const (
	// RoleOfficer is the duty officer an assignment was pushed to.
	RoleOfficer Role = "officer"
	// RoleRaiser is the person who raised the issue.
	RoleRaiser Role = "raiser"
	// RoleHead is the head of a unit whose part a supervisor urged: an urge counts against the
	// department.
	RoleHead Role = "head"
	// RoleEscalation is a person a reminder or an escalation chain tells: the officer, the
	// unit's head, or a street's or the city's supervisor.
	RoleEscalation Role = "escalation"
)

// EscalationKinds are the kinds of event that tell the person they name: a reminder that a
// deadline approaches, and a step of the chain after a breach.
var EscalationKinds = []string{"reminded", "escalated"}

// Notification is one message to one person about one event of an issue.
type Notification struct {
	// ID is stable for the event and the recipient (see ID), so a receiver that gets it twice
	// (a retry after a lost answer) can tell.
	ID string `json:"id"`
	// Recipient is the person's id: an officer id of a roster, or the raiser's subject.
	Recipient string `json:"recipient"`
	Role      Role   `json:"role"`
	IssueID   string `json:"issue_id"`
	// Kind is the event's kind (eventlog.Kind) and Seq its stream sequence.
	Kind string `json:"kind"`
	Seq  uint64 `json:"seq"`
	// Text is the message in Chinese, TextEn the same in English.
	Text   string `json:"text"`
	TextEn string `json:"text_en"`
	// OccurredAt is when the stream stored the event.
	OccurredAt time.Time `json:"occurred_at"`
}

// ID is the notification id of an event for a recipient in a role: the event's stream sequence
// names the event for good, so the id is the same on every redelivery and after every restart.
func ID(issueID string, seq uint64, role Role, recipient string) string {
	return issueID + "." + strconv.FormatUint(seq, 10) + "." + string(role) + "." + recipient
}

// Notifier delivers one notification. It returns the code the receiver answered (an HTTP status
// for the webhook; 0 when no answer came) and, when the delivery failed, an error. A failure that
// a later attempt may mend (a timeout, a 5xx, a refused connection) is retried; one wrapping
// ErrRefused (the receiver said no for good, such as a 4xx) is not.
type Notifier interface {
	Notify(ctx context.Context, n Notification) (code int, err error)
}

// ErrRefused marks a failure no retry can mend.
var ErrRefused = errors.New("refused")

// Refused wraps err as a failure no retry can mend.
func Refused(err error) error { return fmt.Errorf("%w: %w", ErrRefused, err) }
