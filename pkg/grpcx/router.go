package grpcx

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Router is a client connection that sends each call to the connection of the call's service,
// keyed by the service's full name (whistle.v1.IntakeService). Generated clients take it as they
// take one connection, so a client written against one address reaches services that run in
// processes of their own. A call to a service it has no connection for fails Unimplemented,
// naming the service, as a server without that service would answer.
type Router map[string]grpc.ClientConnInterface

// Invoke sends a unary call to its service's connection.
func (r Router) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	conn, err := r.route(method)
	if err != nil {
		return err
	}
	return conn.Invoke(ctx, method, args, reply, opts...)
}

// NewStream opens a stream on its service's connection.
func (r Router) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	conn, err := r.route(method)
	if err != nil {
		return nil, err
	}
	return conn.NewStream(ctx, desc, method, opts...)
}

// route finds the connection for a method named as gRPC names it: /package.Service/Method.
func (r Router) route(method string) (grpc.ClientConnInterface, error) {
	service, _, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if conn, ok := r[service]; ok {
		return conn, nil
	}
	return nil, status.Errorf(codes.Unimplemented, "grpcx: no connection to service %s", service)
}
