package cli_test

import (
	"context"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/whistle-dispatch/whistle/pkg/grpcx"
)

func TestTheHealthCheckAnswersServingForTheServerAndEachService(t *testing.T) {
	e := start(t)
	conn, err := grpcx.Dial(e.sys.GRPCAddr(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(conn)
	for _, name := range []string{"", "whistle.v1.IntakeService", "whistle.v1.RoutingService", "whistle.v1.DepartmentService", "whistle.v1.EscalationService"} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v, %v; want SERVING", name, resp, err)
		}
	}
}
