package authx

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// whoAmI is a hand-written gRPC service that answers with the caller's subject, once
// by a unary call and once over a stream, so both interceptors can be checked.
var whoAmI = grpc.ServiceDesc{
	ServiceName: "whistle.test.WhoAmI",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Get",
		Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(wrapperspb.StringValue)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				p, ok := PrincipalFrom(ctx)
				if !ok {
					return nil, status.Error(codes.Internal, "no principal in context")
				}
				return wrapperspb.String(p.Subject), nil
			}
			return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/whistle.test.WhoAmI/Get"}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(_ any, ss grpc.ServerStream) error {
			p, ok := PrincipalFrom(ss.Context())
			if !ok {
				return status.Error(codes.Internal, "no principal in context")
			}
			return ss.SendMsg(wrapperspb.String(p.Subject))
		},
	}, {
		// Follow sends the subject and then stays open until the call ends, as a watch does.
		StreamName:    "Follow",
		ServerStreams: true,
		Handler: func(_ any, ss grpc.ServerStream) error {
			p, _ := PrincipalFrom(ss.Context())
			if err := ss.SendMsg(wrapperspb.String(p.Subject)); err != nil {
				return err
			}
			<-ss.Context().Done()
			return status.FromContextError(ss.Context().Err()).Err()
		},
	}},
}

// serve starts a real gRPC server on loopback guarded by a, with health and whoAmI,
// and returns a connection to it built with opts.
func serve(t *testing.T, a *Authority, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(a.UnaryInterceptor()), grpc.StreamInterceptor(a.StreamInterceptor()))
	srv.RegisterService(&whoAmI, struct{}{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// callBoth calls whoAmI by its unary and its streaming method and returns both results.
func callBoth(ctx context.Context, conn *grpc.ClientConn) (unary, stream string, unaryErr, streamErr error) {
	out := new(wrapperspb.StringValue)
	unaryErr = conn.Invoke(ctx, "/whistle.test.WhoAmI/Get", wrapperspb.String(""), out)
	unary = out.GetValue()

	s, err := conn.NewStream(ctx, &whoAmI.Streams[0], "/whistle.test.WhoAmI/Watch")
	if err == nil {
		err = s.SendMsg(wrapperspb.String(""))
	}
	if err == nil {
		err = s.CloseSend()
	}
	msg := new(wrapperspb.StringValue)
	if err == nil {
		err = s.RecvMsg(msg)
	}
	return unary, msg.GetValue(), unaryErr, err
}

func TestInterceptorsPassTheVerifiedCallerToHandlers(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	tok, err := a.Mint(officer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	conn := serve(t, a, grpc.WithPerRPCCredentials(BearerToken(tok)))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	unary, stream, uerr, serr := callBoth(ctx, conn)
	if uerr != nil || serr != nil || unary != officer.Subject || stream != officer.Subject {
		t.Fatalf("unary %q, %v; stream %q, %v; want %q from both", unary, uerr, stream, serr, officer.Subject)
	}
}

func TestInterceptorsRejectCallsWithoutAGoodToken(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := NewAuthority(key)
	other, err := NewAuthority([]byte("another key that is 32 bytes lon")).Mint(officer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]grpc.DialOption{
		"no token":               nil,
		"a token of another key": {grpc.WithPerRPCCredentials(BearerToken(other))},
	} {
		t.Run(name, func(t *testing.T) {
			conn := serve(t, a, opts...)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, _, uerr, serr := callBoth(ctx, conn)
			for kind, err := range map[string]error{"unary": uerr, "stream": serr} {
				if status.Code(err) != codes.Unauthenticated {
					t.Errorf("%s call: %v, want Unauthenticated", kind, err)
				}
			}
		})
	}
}

func TestHealthNeedsNoToken(t *testing.T) {
	t.Parallel()
	conn := serve(t, NewAuthority(testKey(t)))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check = %v, %v; want SERVING", resp, err)
	}
}

func TestAStreamEndsUnauthenticatedWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	// Token expiry has a resolution of a second, so this one ends within one to two seconds.
	tok, err := a.Mint(officer, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn := serve(t, a, grpc.WithPerRPCCredentials(BearerToken(tok)))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := conn.NewStream(ctx, &whoAmI.Streams[1], "/whistle.test.WhoAmI/Follow")
	if err == nil {
		err = s.SendMsg(wrapperspb.String(""))
	}
	if err == nil {
		err = s.CloseSend()
	}
	msg := new(wrapperspb.StringValue)
	if err == nil {
		err = s.RecvMsg(msg)
	}
	if err != nil || msg.GetValue() != officer.Subject {
		t.Fatalf("the stream began with %q, %v; want %q", msg.GetValue(), err, officer.Subject)
	}
	began := time.Now()
	err = s.RecvMsg(msg)
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("the stream ended with %v, want Unauthenticated when its token expired", err)
	}
	if waited := time.Since(began); waited > 5*time.Second {
		t.Errorf("the stream ended %s after it began; its token lasted 2s", waited)
	}
}
