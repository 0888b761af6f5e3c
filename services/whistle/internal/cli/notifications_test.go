package cli_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/notify"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cli"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

func TestNotificationsListsWhatTheRaiserWasToldFilteredByCaseAndStatusForSupervisorsOnly(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hook.Close)
	t.Setenv(cli.TokenEnv, "")
	sys, err := system.Start(t.Context(), system.Options{DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler),
		Notify: notify.Config{Webhook: notify.WebhookConfig{URL: hook.URL, Secret: "sixteen-bytes-at-least"}}})
	if err != nil {
		t.Fatalf("start the system: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sys.Stop(ctx); err != nil {
			t.Errorf("stop the system: %v", err)
		}
	})
	e := &env{t: t, sys: sys}
	worker := e.token(authx.RoleGridWorker, grid)
	supervisor := e.token(authx.RoleSupervisor, authx.CityScope)
	m := caseLine.FindStringSubmatch(e.ok(worker, "raise", "--grid", grid, "--category", "noise", "--text", "Drilling at night", "--request-id", "told-1"))
	if m == nil {
		t.Fatal("raise printed no case number")
	}
	id := m[1]

	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		list := &whistlev1.ListNotificationsResponse{}
		e.okJSON(supervisor, list, "notifications", "--issue", id, "--status", "delivered")
		if len(list.GetNotifications()) == 0 {
			return errNotYet
		}
		return nil
	})
	out := e.ok(supervisor, "notifications", "--issue", id, "--status", "delivered")
	for _, want := range []string{"CASE", id, "routed", "test-grid-worker", "raiser", "delivered", "204 in"} {
		if !strings.Contains(out, want) {
			t.Errorf("whistle notifications does not show %q:\n%s", want, out)
		}
	}
	if out := e.ok(supervisor, "notifications", "--issue", id, "--status", "failed"); !strings.Contains(out, "No notifications.") {
		t.Errorf("no failed notification, yet:\n%s", out)
	}
	if _, errOut, err := e.whistle(supervisor, "notifications", "--status", "lost"); err == nil ||
		!strings.Contains(errOut, "--status must be one of pending, delivered, failed") {
		t.Errorf("a bad --status: %v %q", err, errOut)
	}
	if _, errOut, err := e.whistle(worker, "notifications"); err == nil || !strings.HasPrefix(errOut, "whistle: PermissionDenied: ") {
		t.Errorf("a grid worker listing notifications: %v %q", err, errOut)
	}
}
