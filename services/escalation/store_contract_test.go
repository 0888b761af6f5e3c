package escalation_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/projectiontest"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

func TestTheRedisStoreKeepsTheProjectionContract(t *testing.T) {
	projectiontest.Run(t, func(t *testing.T) projectiontest.Subject {
		return servicetest.RedisSubject(t, func(rdb redis.UniversalClient) eventlog.Projection { return store.New(rdb, nil, nil) })
	}, servicetest.Lifecycle)
}

func TestTheRedisStoreKeepsTheProjectionContractOnARedisCluster(t *testing.T) {
	clusters := redistest.NewClusterPool(t)
	projectiontest.Run(t, func(t *testing.T) projectiontest.Subject {
		return servicetest.ClusterSubject(t, clusters, func(rdb redis.UniversalClient) eventlog.Projection { return store.New(rdb, nil, nil) })
	}, servicetest.Lifecycle)
}
