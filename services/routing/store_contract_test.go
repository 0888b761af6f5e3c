package routing

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/projectiontest"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
	"github.com/whistle-dispatch/whistle/services/routing/internal/store"
)

func TestTheRedisStoreKeepsTheProjectionContract(t *testing.T) {
	projectiontest.Run(t, func(t *testing.T) projectiontest.Subject {
		return servicetest.RedisSubject(t, func(rdb redis.UniversalClient) eventlog.Projection { return store.New(rdb) })
	}, servicetest.Lifecycle)
}
