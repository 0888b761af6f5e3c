package systemtest

import (
	"errors"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

func TestASecondWhistleOnTheSameDataFolderIsRefusedUntilTheFirstStops(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(Epoch)
	first := Start(t, dir, clk)
	if _, err := system.Start(t.Context(), Options(dir, clk)); !errors.Is(err, system.ErrDataInUse) {
		t.Fatalf("a second start on the folder: %v; want ErrDataInUse", err)
	}
	if _, err := system.Replay(t.Context(), Options(dir, clk)); !errors.Is(err, system.ErrDataInUse) {
		t.Fatalf("a replay on the folder in use: %v; want ErrDataInUse", err)
	}
	Stop(t, first)
	Stop(t, Start(t, dir, clk)) // free again once the first has stopped
}
