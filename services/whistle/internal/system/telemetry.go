package system

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/whistle-dispatch/whistle/pkg/otelx"
)

// telemetry returns the process's OpenTelemetry setup; every System in a process shares it,
// since otelx installs its providers once per process.
func telemetry(ctx context.Context) (*otelx.Telemetry, error) {
	tel, err := otelx.Setup(context.WithoutCancel(ctx), otelx.FromEnv("whistle", version()))
	if err != nil {
		return nil, fmt.Errorf("system: telemetry: %w", err)
	}
	return tel, nil
}

// version is the main module's version as the Go toolchain recorded it at build time.
func version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "dev"
}
