package routing

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/projectiontest"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
	"github.com/whistle-dispatch/whistle/services/routing/internal/store"
)

func TestTheRedisStoreKeepsTheProjectionContract(t *testing.T) {
	projectiontest.Run(t, func(t *testing.T) projectiontest.Subject {
		return servicetest.RedisSubject(t, func(rdb redis.UniversalClient) eventlog.Projection { return store.New(rdb) })
	}, servicetest.Lifecycle)
}

func TestTheRedisStoreKeepsTheProjectionContractOnARedisCluster(t *testing.T) {
	clusters := redistest.NewClusterPool(t)
	projectiontest.Run(t, func(t *testing.T) projectiontest.Subject {
		return servicetest.ClusterSubject(t, clusters, func(rdb redis.UniversalClient) eventlog.Projection { return store.New(rdb) })
	}, servicetest.Lifecycle)
}

// TestTheRedisStoreKeepsTheProjectionContractWithAReturn runs the contract on a history in which a
// department returns its part: routing keeps each return in an index (routing:returned) that every
// fold of the return writes, and which a fold run again must leave as it was.
func TestTheRedisStoreKeepsTheProjectionContractWithAReturn(t *testing.T) {
	projectiontest.Run(t, func(t *testing.T) projectiontest.Subject {
		return servicetest.RedisSubject(t, func(rdb redis.UniversalClient) eventlog.Projection { return store.New(rdb) })
	}, func(issueID string) []*whistlev1.Event {
		evs := servicetest.Lifecycle(issueID)[:2] // raised, and routed to water and urban management
		returned := &whistlev1.Event{Id: issueID + ".returned", IssueId: issueID, CorrelationId: issueID,
			OccurredAt: timestamppb.New(servicetest.LifecycleStart.Add(10 * time.Minute)),
			Actor:      &whistlev1.Actor{Subject: "urban-management-officer", Role: string(authx.RoleOfficer), Scope: "urban-management"},
			Payload: &whistlev1.Event_Returned{Returned: &whistlev1.AssignmentReturned{DepartmentId: "urban-management",
				Reason: "not a matter of ours"}}}
		return append(evs, returned)
	})
}
