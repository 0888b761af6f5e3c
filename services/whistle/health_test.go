package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTheHealthCommandSucceedsOnlyWhenHealthzAnswersOK(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{name: "ready", status: http.StatusOK, body: "ok"},
		{name: "not ready", status: http.StatusServiceUnavailable, body: "redis: connection refused", wantErr: "redis: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/healthz" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			out, err := runWhistle(t, "health", "--http", strings.TrimPrefix(srv.URL, "http://"))
			if tc.wantErr == "" {
				if err != nil || strings.TrimSpace(out) != tc.body {
					t.Fatalf("health = %q, %v; want %q and no error", out, err, tc.body)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("health error = %v; want one naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestTheHealthCommandFailsWhenNothingListens(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	if _, err := runWhistle(t, "health", "--http", addr); err == nil {
		t.Fatal("health of a closed address succeeded; want an error")
	}
}
