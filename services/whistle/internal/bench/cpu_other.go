//go:build !unix

package bench

import "time"

// processCPU returns 0 where the platform offers no getrusage; the bench then prints no CPU figure.
func processCPU() time.Duration { return 0 }
