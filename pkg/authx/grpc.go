package authx

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// publicPrefixes are the methods that need no token: health checks come from load
// balancers and orchestrators, and reflection lets `grpcurl -plaintext host list`
// show what a server offers.
var publicPrefixes = []string{"/grpc.health.v1.Health/", "/grpc.reflection."}

// isPublic reports whether fullMethod may be called without a token.
func isPublic(fullMethod string) bool {
	for _, p := range publicPrefixes {
		if strings.HasPrefix(fullMethod, p) {
			return true
		}
	}
	return false
}

// authenticate verifies the bearer token in ctx's metadata and returns ctx with the
// Principal, or an Unauthenticated status that tells the caller what to fix.
func (a *Authority) authenticate(ctx context.Context) (context.Context, time.Time, error) {
	vals := metadata.ValueFromIncomingContext(ctx, "authorization") // no copy of the other metadata
	if len(vals) == 0 {
		return nil, time.Time{}, status.Error(codes.Unauthenticated, `missing "authorization: Bearer <token>" metadata`)
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, time.Time{}, status.Error(codes.Unauthenticated, `authorization metadata must be "Bearer <token>"`)
	}
	p, expires, err := a.verify(strings.TrimSpace(token))
	if err != nil {
		return nil, time.Time{}, status.Error(codes.Unauthenticated, err.Error())
	}
	return WithPrincipal(ctx, p), expires, nil
}

// UnaryInterceptor authenticates every unary call except health and reflection and
// puts the caller's Principal in the handler's context.
func (a *Authority) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if isPublic(info.FullMethod) {
			return handler(ctx, req)
		}
		ctx, _, err := a.authenticate(ctx)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// errTokenExpired is the cause of a stream's context ending because its token expired.
var errTokenExpired = errors.New("the token expired during the stream")

// StreamInterceptor authenticates every streaming call except health and reflection
// and puts the caller's Principal in the stream's context. A stream outlives any one
// check: a watch may run for days, so when its token expires the stream's context is
// cancelled and the call ends with Unauthenticated, and the caller must come back with a
// fresh token, as a new call would have to.
func (a *Authority) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if isPublic(info.FullMethod) {
			return handler(srv, ss)
		}
		ctx, expires, err := a.authenticate(ss.Context())
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		expiry := time.AfterFunc(expires.Sub(a.now()), func() { cancel(errTokenExpired) })
		defer expiry.Stop()
		err = handler(srv, &authedStream{ServerStream: ss, ctx: ctx})
		if errors.Is(context.Cause(ctx), errTokenExpired) {
			return status.Errorf(codes.Unauthenticated, "%v at %s: call again with a new token", errTokenExpired, expires.UTC().Format(time.RFC3339))
		}
		return err
	}
}

// authedStream is a server stream whose context carries the Principal.
type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the stream's context with the Principal.
func (s *authedStream) Context() context.Context { return s.ctx }

// BearerToken returns per-call credentials that send token as "authorization: Bearer".
// They do not require transport security, because Whistle's services talk plaintext on
// loopback or inside a private network; put TLS in front when that is not so.
func BearerToken(token string) credentials.PerRPCCredentials { return bearer(token) }

// bearer is a token sent on every call.
type bearer string

// GetRequestMetadata returns the authorization header for one call.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity reports false so the token can ride a plaintext connection.
func (bearer) RequireTransportSecurity() bool { return false }
