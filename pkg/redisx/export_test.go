package redisx

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// CountTrips is countTrips, for the tests of package redisx_test, which may start a cluster.
func CountTrips(c redis.UniversalClient, count func(ctx context.Context, pipeline bool)) {
	countTrips(c, count)
}
