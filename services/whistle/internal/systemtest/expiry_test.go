package systemtest

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/grpcx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// TestAWatchEndsUnauthenticatedWhenItsTokenExpires holds WatchBreaches and WatchInbox open
// on tokens that last two seconds: each ends with Unauthenticated once its token is past,
// instead of streaming on for a caller who is no longer authorised.
func TestAWatchEndsUnauthenticatedWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	sys := Start(t, t.TempDir(), clock.NewFake(Epoch))
	for _, who := range []struct {
		name  string
		as    authx.Principal
		watch func(*testing.T, whistlev1.EscalationServiceClient, whistlev1.DepartmentServiceClient) error
	}{
		{"a supervisor's breach watch", Supervisor(), func(t *testing.T, e whistlev1.EscalationServiceClient, _ whistlev1.DepartmentServiceClient) error {
			s, err := e.WatchBreaches(t.Context(), &whistlev1.WatchBreachesRequest{})
			if err != nil {
				return err
			}
			for {
				if _, err := s.Recv(); err != nil {
					return err
				}
			}
		}},
		{"an officer's inbox watch", Officer("water"), func(t *testing.T, _ whistlev1.EscalationServiceClient, d whistlev1.DepartmentServiceClient) error {
			s, err := d.WatchInbox(t.Context(), &whistlev1.WatchInboxRequest{})
			if err != nil {
				return err
			}
			for {
				if _, err := s.Recv(); err != nil {
					return err
				}
			}
		}},
	} {
		tok, err := sys.Authority().Mint(who.as, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := grpcx.Dial(sys.GRPCAddr(), tok)
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		err = who.watch(t, whistlev1.NewEscalationServiceClient(conn), whistlev1.NewDepartmentServiceClient(conn))
		conn.Close()
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s ended with %v, want Unauthenticated", who.name, err)
		}
		if waited := time.Since(began); waited > 10*time.Second {
			t.Errorf("%s ended %s after it began, on a token of 2s", who.name, waited)
		}
	}
}
