// Package grpcx builds the gRPC servers and clients of every Whistle service the same
// way: traced, authenticated, panic-safe, with health and reflection, and stopped
// gracefully.
package grpcx

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
)

// MaxConnectionAge is how long a client's connection takes new calls before the server asks it to
// open another. A client that balances over the addresses a name resolves to (a gateway over a
// headless Service's pods) looks the name up again only when a connection closes, so without an
// age a replica added by scaling up would get none of its calls.
const MaxConnectionAge = 5 * time.Minute

// NewServer returns a gRPC server that traces every call, turns a handler's panic into
// codes.Internal (recovery runs first so that it also covers authentication), then
// authenticates with auth, and serves health (SERVING, for the server and for each service
// registered on it) and reflection without a token.
// A nil auth rejects every other call, so a server cannot be left open by mistake.
// opts are applied after these.
func NewServer(auth *authx.Authority, opts ...grpc.ServerOption) *grpc.Server {
	all := append([]grpc.ServerOption{
		// Unbounded grace: the calls on an old connection, watches among them, run on, and only new
		// calls move to a new connection.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: MaxConnectionAge}),
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(recoverUnary, auth.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(recoverStream, auth.StreamInterceptor()),
	}, opts...)
	srv := grpc.NewServer(all...)
	healthpb.RegisterHealthServer(srv, &serviceHealth{Server: health.NewServer(), srv: srv})
	reflection.Register(srv)
	return srv
}

// serviceHealth answers health checks for the server as a whole (the empty name) and for each
// service registered on it by name, as load balancers and grpc_health_probe ask with
// -service=whistle.v1.IntakeService. The services are registered after NewServer returns, so the
// names are read from the server at the first health call; gRPC refuses a registration once the
// server serves, and no call arrives before it does, so by then the list is complete.
type serviceHealth struct {
	*health.Server
	srv  *grpc.Server
	once sync.Once
}

// register marks the whole server and every service registered on it as serving, once.
func (h *serviceHealth) register() {
	h.once.Do(func() {
		h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		for name := range h.srv.GetServiceInfo() {
			h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		}
	})
}

// Check answers the status of the server or of one of its services.
func (h *serviceHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.register()
	return h.Server.Check(ctx, req)
}

// List answers the status of the server and of every service.
func (h *serviceHealth) List(ctx context.Context, req *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	h.register()
	return h.Server.List(ctx, req)
}

// Watch streams the status of the server or of one of its services.
func (h *serviceHealth) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	h.register()
	return h.Server.Watch(req, stream)
}

// recoverUnary turns a panic in a unary handler into codes.Internal, so one bad request
// cannot take the process down.
func recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicked(ctx, info.FullMethod, r)
		}
	}()
	return handler(ctx, req)
}

// recoverStream turns a panic in a stream handler into codes.Internal.
func recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicked(ss.Context(), info.FullMethod, r)
		}
	}()
	return handler(srv, ss)
}

// panicked logs a recovered panic with its stack and returns the status for the caller,
// which names no internals.
func panicked(ctx context.Context, method string, r any) error {
	slog.ErrorContext(ctx, "grpc handler panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error in %s", method)
}

// Serve serves srv on lis until ctx is done, then stops gracefully, letting calls in
// flight finish, and forces a stop after hardStop so that a stuck stream cannot hold
// shutdown forever. It returns nil after a shutdown that ctx asked for.
func Serve(ctx context.Context, srv *grpc.Server, lis net.Listener, hardStop time.Duration) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		return fmt.Errorf("grpcx: serve on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(hardStop)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		srv.Stop() // GracefulStop returns once this has closed the remaining calls
		<-stopped
	}
	return <-served
}

// Dial returns a client for target over plaintext (Whistle's services talk on loopback
// or a private network), traced, and sending token as a bearer token on every call
// when it is not empty. opts are applied after these.
//
// Calls are shared round robin among the addresses a target resolves to, and one that stops
// answering is passed over until it answers again, so that a client outlives the loss of a
// replica: a name with an address per replica (compose's service names, a headless Service), or a
// list of replicas, comma-separated (10.0.0.1:7070,10.0.0.2:7070).
func Dial(target string, token string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	all := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	}
	if token != "" {
		all = append(all, grpc.WithPerRPCCredentials(authx.BearerToken(token)))
	}
	if strings.Contains(target, ",") {
		var state resolver.State
		for addr := range strings.SplitSeq(target, ",") {
			if addr = strings.TrimSpace(addr); addr == "" {
				return nil, fmt.Errorf("grpcx: dial %s: an empty address in the list", target)
			}
			state.Addresses = append(state.Addresses, resolver.Address{Addr: addr})
		}
		replicas := manual.NewBuilderWithScheme("whistle-replicas")
		replicas.InitialState(state)
		all = append(all, grpc.WithResolvers(replicas))
		target = replicas.Scheme() + ":///" + target
	}
	conn, err := grpc.NewClient(target, append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpcx: dial %s: %w", target, err)
	}
	return conn, nil
}
