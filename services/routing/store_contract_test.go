package routing

import (
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/projectiontest"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
	"github.com/whistle-dispatch/whistle/services/routing/internal/store"
)

func TestTheRedisStoreKeepsTheProjectionContract(t *testing.T) {
	projectiontest.Run(t, func(t *testing.T) eventlog.Projection { return store.New(redistest.Client(t, redistest.Run(t))) }, servicetest.Lifecycle)
}
