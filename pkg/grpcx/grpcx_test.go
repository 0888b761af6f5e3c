package grpcx_test

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/grpcx"
)

// probe is the test service; held is closed by Hold once its stream is open.
type probe struct{ held chan struct{} }

// probeDesc is a hand-written service: Panic panics, and Hold keeps its stream open
// until the server cancels it, as a stuck watcher would.
var probeDesc = grpc.ServiceDesc{
	ServiceName: "whistle.test.Probe",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Panic",
		Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(emptypb.Empty)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { panic("boom") }
			return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/whistle.test.Probe/Panic"}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Hold",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			close(srv.(*probe).held)
			<-ss.Context().Done()
			return ss.Context().Err()
		},
	}},
}

// system is a running grpcx server and what a test needs to reach and stop it.
type system struct {
	addr   string
	auth   *authx.Authority
	probe  *probe
	stop   context.CancelFunc
	served chan error
}

// start serves NewServer with the probe service on loopback until the test ends.
func start(t *testing.T, hardStop time.Duration) *system {
	t.Helper()
	key, err := authx.LoadOrCreateKey(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	s := &system{auth: authx.NewAuthority(key), probe: &probe{held: make(chan struct{})}, served: make(chan error, 1)}
	srv := grpcx.NewServer(s.auth)
	srv.RegisterService(&probeDesc, s.probe)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() { s.served <- grpcx.Serve(ctx, srv, lis, hardStop) }()
	t.Cleanup(func() { cancel(); <-s.served })
	return s
}

// dial connects to s with token and closes the connection when the test ends.
func dial(t *testing.T, s *system, token string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcx.Dial(s.addr, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestHealthAndReflectionWorkWithoutAToken(t *testing.T) {
	t.Parallel()
	conn := dial(t, start(t, time.Second), "")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", hc, err)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection list: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"grpc.health.v1.Health", "whistle.test.Probe"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, want %s among them", names, want)
		}
	}
}

func TestHealthAnswersServingForEachRegisteredServiceByName(t *testing.T) {
	t.Parallel()
	conn := dial(t, start(t, time.Second), "")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(conn)
	for _, name := range []string{"", "whistle.test.Probe"} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v, %v; want SERVING", name, resp, err)
		}
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "whistle.test.Nothing"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of a service not registered = %v; want NotFound", err)
	}
	watch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "whistle.test.Probe"})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health watch of the probe = %v, %v; want SERVING", resp, err)
	}
}

func TestAPanicBecomesInternalAndACallWithoutTokenUnauthenticated(t *testing.T) {
	t.Parallel()
	s := start(t, time.Second)
	tok, err := s.auth.Mint(authx.Principal{Subject: "sup-1", Role: authx.RoleSupervisor, Scope: authx.CityScope}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for token, want := range map[string]codes.Code{tok: codes.Internal, "": codes.Unauthenticated} {
		err := dial(t, s, token).Invoke(ctx, "/whistle.test.Probe/Panic", &emptypb.Empty{}, &emptypb.Empty{})
		if status.Code(err) != want {
			t.Errorf("with token %t: %v, want %s", token != "", err, want)
		}
	}
	// The server survived the panic.
	if _, err := healthpb.NewHealthClient(dial(t, s, "")).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health after panic: %v", err)
	}
}

func TestServeForcesAStopWhenAStreamOutlivesTheGracePeriod(t *testing.T) {
	t.Parallel()
	s := start(t, 100*time.Millisecond)
	tok, err := s.auth.Mint(authx.Principal{Subject: "off-1", Role: authx.RoleOfficer, Scope: "dept/water"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := dial(t, s, tok).NewStream(ctx, &probeDesc.Streams[0], "/whistle.test.Probe/Hold")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.probe.held:
	case <-ctx.Done():
		t.Fatal("Hold never started")
	}

	s.stop()
	select {
	case err := <-s.served:
		s.served <- err // leave it for the cleanup
		if err != nil {
			t.Fatalf("Serve = %v, want nil after shutdown", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return: the held stream blocked shutdown")
	}
	if err := stream.RecvMsg(&emptypb.Empty{}); err == nil {
		t.Fatal("held stream still open after the forced stop")
	}
}

func TestARouterSendsEachServicesCallsToItsOwnConnectionAndRefusesOneItHasNone(t *testing.T) {
	t.Parallel()
	a, b := start(t, time.Second), start(t, time.Second)
	tok, err := b.auth.Mint(authx.Principal{Subject: "off-1", Role: authx.RoleOfficer, Scope: "dept/water"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The probe is b's, health a's: b's token opens b's stream, and a's health answers.
	router := grpcx.Router{"whistle.test.Probe": dial(t, b, tok), "grpc.health.v1.Health": dial(t, a, "")}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	stream, err := router.NewStream(ctx, &probeDesc.Streams[0], "/whistle.test.Probe/Hold")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.probe.held:
	case <-a.probe.held:
		t.Fatal("the probe's stream reached a, not b")
	case <-ctx.Done():
		t.Fatal("Hold never started on b")
	}
	if hc, err := healthpb.NewHealthClient(router).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health through the router = %v, %v; want SERVING", hc, err)
	}
	err = router.Invoke(ctx, "/whistle.test.Nothing/Call", &emptypb.Empty{}, &emptypb.Empty{})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "whistle.test.Nothing") {
		t.Errorf("a call to a service with no connection = %v; want Unimplemented naming it", err)
	}
}

func TestATargetListingReplicasSharesCallsAmongThemAndPassesOverOneThatStopped(t *testing.T) {
	t.Parallel()
	a, b := start(t, time.Second), start(t, time.Second)
	// a's token: a answers Panic with Internal, b, which does not know a's key, with Unauthenticated,
	// so each answer says which replica took the call.
	tok, err := a.auth.Mint(authx.Principal{Subject: "sup-1", Role: authx.RoleSupervisor, Scope: authx.CityScope}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcx.Dial(a.addr+", "+b.addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	call := func() codes.Code {
		return status.Code(conn.Invoke(ctx, "/whistle.test.Probe/Panic", &emptypb.Empty{}, &emptypb.Empty{}, grpc.WaitForReady(true)))
	}
	seen := map[codes.Code]bool{}
	for !seen[codes.Internal] || !seen[codes.Unauthenticated] {
		if ctx.Err() != nil {
			t.Fatalf("the calls reached only %v; want both replicas", seen)
		}
		seen[call()] = true
	}

	a.stop()
	<-a.served
	a.served <- nil // for the cleanup
	// Once the client has seen a go, every call reaches b.
	for call() != codes.Unauthenticated {
		if ctx.Err() != nil {
			t.Fatal("the calls still went to the stopped replica")
		}
	}
	for range 10 {
		if got := call(); got != codes.Unauthenticated {
			t.Fatalf("a call after a stopped: %v; want b's Unauthenticated", got)
		}
	}
	if _, err := grpcx.Dial(a.addr+",,"+b.addr, ""); err == nil {
		t.Error("a list with an empty address was accepted")
	}
}
