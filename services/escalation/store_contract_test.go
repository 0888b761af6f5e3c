package escalation_test

import (
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/projectiontest"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

func TestTheRedisStoreKeepsTheProjectionContract(t *testing.T) {
	projectiontest.Run(t, func(t *testing.T) eventlog.Projection { return store.New(redistest.Client(t, redistest.Run(t)), nil) }, servicetest.Lifecycle)
}
