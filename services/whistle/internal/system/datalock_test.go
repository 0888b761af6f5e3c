package system

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
)

// TestARedisServerOutlivingItsParentKeepsTheDataFolderLocked releases the process's own hold
// on the folder, as a whistle that died would, while the redis-server child it started still
// runs: a second whistle is refused until that child is gone.
func TestARedisServerOutlivingItsParentKeepsTheDataFolderLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	child, err := redisx.StartServer(t.Context(), redisx.ServerOptions{
		Dir: filepath.Join(dir, "redis"), AppendOnly: true, Hold: []*os.File{lock.file},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Stop() })
	if err := lock.release(); err != nil {
		t.Fatal(err)
	}

	if second, err := lockDataDir(dir); !errors.Is(err, ErrDataInUse) {
		_ = second.release()
		t.Fatalf("a second lock while the orphaned redis-server runs: %v; want ErrDataInUse", err)
	}
	if err := child.Stop(); err != nil {
		t.Fatal(err)
	}
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("the folder stayed locked after its redis-server stopped: %v", err)
	}
	_ = again.release()
}
