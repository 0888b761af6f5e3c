package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// healthTimeout bounds one health check, so that a container's check of a stuck process fails
// instead of hanging until the engine kills it.
const healthTimeout = 3 * time.Second

// healthCommand asks a running Whistle process whether it is ready, as its /healthz says. A
// container image without a shell or curl (Whistle's has neither) can run it as its health check.
func healthCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check that a running Whistle process is ready (its /healthz answers ok); exit non-zero otherwise",
		Long: "Check that a running Whistle process is ready: GET /healthz on its HTTP address, print the answer,\n" +
			"and exit non-zero unless it is 200 ok. Container health checks run it, since Whistle's image has no shell.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return checkHealth(cmd.Context(), cmd.OutOrStdout(), addr)
		},
	}
	cmd.Flags().StringVar(&addr, "http", defaultHTTPAddr, "HTTP address of the process, as given to its --http")
	return cmd
}

// checkHealth asks http://addr/healthz and returns nil only when it answers 200.
func checkHealth(ctx context.Context, out io.Writer, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	answer := strings.TrimSpace(string(body))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("health: not ready (%s): %s", res.Status, answer)
	}
	_, err = fmt.Fprintln(out, answer)
	return err
}
