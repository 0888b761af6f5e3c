package redisx

import (
	"context"
	"net"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// roundTrips counts every request a client makes of Redis in whistle.redis.round_trips, by kind:
// a command, or a pipeline (a MULTI/EXEC transaction included), which travels as one write and
// one read however many commands it carries; on a cluster, one for each master it reaches.
var roundTrips, _ = meter.Int64Counter("whistle.redis.round_trips",
	metric.WithDescription("Requests made of Redis by this process's clients, by kind: command, or pipeline (a pipeline or MULTI/EXEC transaction is one round trip, on a cluster one per master it reaches)."))

// The attribute sets are built once, so that counting costs no allocation on every command.
var (
	commandTrip  = metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "command")))
	pipelineTrip = metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "pipeline")))
)

// countTrips makes c call count once per round trip (see tripCounter). On a cluster the hook sits
// on the client of each node, which is where a request travels: a command counts once at the
// master that answers it (once more when it is redirected), and a pipeline once at each master
// its commands go to, since go-redis splits it by node and sends each part as one request. The
// client's own requests, such as reading the cluster's slots, count too.
func countTrips(c redis.UniversalClient, count func(ctx context.Context, pipeline bool)) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		// Before any command, so that every node client is made with the hook.
		cc.OnNewNode(func(node *redis.Client) { node.AddHook(tripCounter{count: count}) })
		return
	}
	c.AddHook(tripCounter{count: count})
}

// tripCounter is a go-redis hook that calls count once per round trip: once for each command and
// once for each pipeline or transaction, whatever it carries and whether or not it succeeded. A
// new connection's handshake (HELLO and the like) passes through the hooks and counts like any
// other request; a command the client retries after a network error counts once. A Tx made by
// Watch copies its client's hooks, so its commands are counted too.
type tripCounter struct {
	count func(ctx context.Context, pipeline bool)
}

var _ redis.Hook = tripCounter{}

// DialHook leaves dialling alone.
func (tripCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook counts one command.
func (h tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(ctx, false)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts one pipeline or transaction.
func (h tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.count(ctx, true)
		return next(ctx, cmds)
	}
}

// countTrip adds one round trip to whistle.redis.round_trips.
func countTrip(ctx context.Context, pipeline bool) {
	if pipeline {
		roundTrips.Add(ctx, 1, pipelineTrip)
		return
	}
	roundTrips.Add(ctx, 1, commandTrip)
}
