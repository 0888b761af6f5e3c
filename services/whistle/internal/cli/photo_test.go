package cli_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/evidence/evidencetest"
)

func TestPhotosAreRaisedAndResolvedWithFromFilesAndSavedBack(t *testing.T) {
	e := start(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	drain := write("drain.jpg", evidencetest.JPEGWithGPS(320, 240))
	street := write("street.png", evidencetest.PNG(40, 30))
	notAPhoto := write("fake.jpg", []byte("a text file, whatever its name says"))
	worker := e.token(authx.RoleGridWorker, grid)

	if _, errOut, err := e.whistle(worker, "raise", "--grid", grid, "--category", "blocked-drain", "--text", "Water over the road", "--photo", notAPhoto); err == nil ||
		!strings.Contains(errOut, "InvalidArgument") || !strings.Contains(errOut, "not a JPEG, PNG or WebP") {
		t.Fatalf("raising with a text file called .jpg: %v\n%s", err, errOut)
	}
	raised := &whistlev1.RaiseIssueResponse{}
	e.okJSON(worker, raised, "raise", "--grid", grid, "--category", "blocked-drain", "--text", "Water over the road", "--photo", drain, "--photo", street)
	is := raised.GetIssue()
	if len(is.GetPhotos()) != 2 {
		t.Fatalf("raised with photos %v", is.GetPhotos())
	}
	if out := e.ok(worker, "show", is.GetId()); !strings.Contains(out, "photos:") || !strings.Contains(out, is.GetPhotos()[0].GetId()) {
		t.Errorf("show does not list the photos:\n%s", out)
	}

	saved := filepath.Join(dir, "saved.jpg")
	if out := e.ok(worker, "photo", "get", is.GetId(), is.GetPhotos()[0].GetId(), "-o", saved); !strings.Contains(out, "Saved") {
		t.Errorf("photo get printed %q", out)
	}
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != is.GetPhotos()[0].GetDigest() || bytes.Contains(data, []byte(evidencetest.GPSMarker)) {
		t.Errorf("the saved photo does not match its digest, or still holds its GPS block")
	}

	// The lead unit reports in and resolves with a photo.
	var lead string
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		got := &whistlev1.GetIssueResponse{}
		e.okJSON(worker, got, "show", is.GetId())
		if len(got.GetIssue().GetAssignments()) == 0 {
			return fmt.Errorf("not routed yet")
		}
		lead = got.GetIssue().GetAssignments()[0].GetUnitId()
		return nil
	})
	officer := e.token(authx.RoleOfficer, lead)
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, _, err := e.whistle(officer, "ack", is.GetId())
		return err
	})
	fixed := write("fixed.jpg", evidencetest.JPEG(64, 48))
	if out := e.ok(officer, "resolve", is.GetId(), "--note", "Cleared", "--photo", fixed); !strings.Contains(out, "resolved") {
		t.Fatalf("resolve printed %q", out)
	}
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if out := e.ok(worker, "show", is.GetId()); !strings.Contains(out, lead+" resolved with photos: ph_") {
			return fmt.Errorf("show does not list the resolution's photo:\n%s", out)
		}
		return nil
	})
}
