package grpcapi

import (
	"context"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/notify"
)

// NotificationLister reads the notifications kept in Redis (notify.Lister): every replica of the
// department answers ListNotifications, whether or not it runs the notifier.
type NotificationLister func(ctx context.Context, f notify.Filter, limit int) ([]notify.Delivery, error)

// statuses maps the API's notification statuses to the notifier's.
var statuses = map[whistlev1.NotificationStatus]notify.Status{
	whistlev1.NotificationStatus_NOTIFICATION_STATUS_PENDING:   notify.StatusPending,
	whistlev1.NotificationStatus_NOTIFICATION_STATUS_DELIVERED: notify.StatusDelivered,
	whistlev1.NotificationStatus_NOTIFICATION_STATUS_FAILED:    notify.StatusFailed,
}

// ListNotifications lists notifications newest first, with their attempts, to supervisors: each
// sees those of the issues in their area, and only the city's see those whose issue's grid the
// notifier never learnt (an issue raised before it began).
func (s *Server) ListNotifications(ctx context.Context, req *whistlev1.ListNotificationsRequest) (*whistlev1.ListNotificationsResponse, error) {
	p, err := access.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != authx.RoleSupervisor {
		return nil, access.Denied("notifications")
	}
	if err := apiedge.CheckID("issue_id", req.GetIssueId(), false); err != nil {
		return nil, toStatus(err)
	}
	want, ok := statuses[req.GetStatus()]
	if !ok && req.GetStatus() != whistlev1.NotificationStatus_NOTIFICATION_STATUS_UNSPECIFIED {
		return nil, toStatus(apiedge.Invalid("status", "unknown value %d", req.GetStatus()))
	}
	size, err := apiedge.PageSize(int(req.GetPageSize()))
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &whistlev1.ListNotificationsResponse{}
	if s.Notifications == nil {
		return resp, nil
	}
	ds, err := s.Notifications(ctx, notify.Filter{IssueID: req.GetIssueId(), Status: want, Visible: func(grid string) bool {
		if grid == "" {
			return p.Scope == catalog.CityScope
		}
		return access.SeesArea(s.cat, p, grid)
	}}, size)
	if err != nil {
		return nil, toStatus(err)
	}
	for _, d := range ds {
		resp.Notifications = append(resp.Notifications, notificationProto(d))
	}
	return resp, nil
}

// notificationProto is a delivery as the API shows it.
func notificationProto(d notify.Delivery) *whistlev1.Notification {
	n := &whistlev1.Notification{Id: d.ID, RecipientId: d.Recipient, RecipientRole: string(d.Role), IssueId: d.IssueID,
		EventKind: d.Kind, EventSeq: d.Seq, Text: d.Text, TextEn: d.TextEn, QueuedAt: timestamppb.New(d.CreatedAt)}
	for s, st := range statuses {
		if st == d.Status {
			n.Status = s
		}
	}
	if !d.NextAt.IsZero() {
		n.NextAttemptAt = timestamppb.New(d.NextAt)
	}
	for _, a := range d.Attempts {
		n.Attempts = append(n.Attempts, &whistlev1.NotificationAttempt{Attempt: int32(a.N), At: timestamppb.New(a.At),
			Duration: durationpb.New(a.Duration), Code: int32(a.Code), Error: a.Error})
	}
	return n
}
