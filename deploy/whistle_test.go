package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The whistle binary is built once for every test of the package that runs it.
var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	binaryDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryDir != "" {
		os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// whistleBinary builds the whistle program from the workspace, as the Dockerfile does from the
// services module, and returns its path.
func whistleBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		binaryDir, binaryErr = os.MkdirTemp("", "whistle-deploy-test-")
		if binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(binaryDir, "whistle")
		args := []string{"build", "-o", binaryPath}
		if raceBuild {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/whistle-dispatch/whistle/services/whistle")...)
		cmd.Dir = repoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build whistle: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// syncBuffer is a buffer a process writes while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// whistleUp is a `whistle up` process the test started.
type whistleUp struct {
	bin, data, catalog string
	grpc, http         string // where it listens
	log                *syncBuffer
}

// startTimeout bounds how long `whistle up` may take to say it is up.
const startTimeout = 2 * time.Minute

// startWhistle runs `whistle up` on a new data folder with the catalog at catalog, on free
// loopback ports, and stops it (Ctrl-C, as a person would) when the test ends.
func startWhistle(t *testing.T, catalog string) *whistleUp {
	t.Helper()
	w := &whistleUp{bin: whistleBinary(t), data: t.TempDir(), catalog: catalog, log: &syncBuffer{}}
	cmd := exec.Command(w.bin, "up", "--data", w.data, "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--catalog", catalog)
	cmd.Stderr = w.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(45 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("whistle up did not stop within 45 s of Ctrl-C")
		}
	})

	up := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "gRPC API"); ok {
				w.grpc = strings.TrimSpace(addr)
			}
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "health"); ok {
				w.http = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(u), "http://"), "/healthz")
			}
			if strings.HasPrefix(line, "Press Ctrl-C") {
				up <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		up <- fmt.Errorf("whistle up ended before it was up: %v", sc.Err())
	}()
	select {
	case err := <-up:
		if err != nil {
			t.Fatalf("%v\n%s", err, w.log.String())
		}
	case <-time.After(startTimeout):
		t.Fatalf("whistle up was not up within %s\n%s", startTimeout, w.log.String())
	}
	if w.grpc == "" || w.http == "" {
		t.Fatalf("whistle up did not say where it listens (gRPC %q, HTTP %q)", w.grpc, w.http)
	}
	return w
}

// natsURL is the embedded NATS's URL, which `whistle up` logs at start.
func (w *whistleUp) natsURL(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`msg="embedded NATS started" url=(\S+)`).FindStringSubmatch(w.log.String())
	if m == nil {
		t.Fatalf("whistle up logged no embedded NATS URL:\n%s", w.log.String())
	}
	return m[1]
}

// run runs a whistle command against the process and returns what it printed.
func (w *whistleUp) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, w.bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("whistle %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// token mints a token for role and scope with the process's key.
func (w *whistleUp) token(t *testing.T, role, scope string) string {
	t.Helper()
	out, err := w.run(t.Context(), "token", "--data", w.data, "--catalog", w.catalog, "--role", role, "--scope", scope)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// call runs a client command of the API as the caller the token names.
func (w *whistleUp) call(ctx context.Context, token string, args ...string) (string, error) {
	return w.run(ctx, append(args, "--server", w.grpc, "--token", token)...)
}

// metrics returns the process's /metrics.
func (w *whistleUp) metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.http+"/metrics", nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", res.Status)
	}
	return string(b), err
}
