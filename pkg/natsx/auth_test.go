package natsx_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/natsx"
)

func TestTheUsersConfigFileReadsBackAsTheServersOwnUsers(t *testing.T) {
	t.Parallel()
	users := []natsx.User{
		{Name: "intake", Password: "p1", Publish: []string{"whistle.*.raised", "$JS.API.>"}, PublishDeny: []string{"$JS.API.STREAM.DELETE.>"}, Subscribe: []string{"_INBOX.>"}},
		{Name: "tools", Password: `with "quotes" and spaces`, Publish: []string{"$JS.API.>"}, Subscribe: []string{"_INBOX.>"}},
	}
	path := filepath.Join(t.TempDir(), "users.conf")
	if err := natsx.WriteUsersConfig(path, users, "a header\nof two lines"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("the file has mode %o, want 600: it holds passwords", st.Mode().Perm())
	}
	got, err := natsx.ReadUsersConfig(path)
	if err != nil {
		t.Fatalf("nats-server cannot read the file: %v", err)
	}
	if len(got) != len(users) {
		t.Fatalf("read %d users, want %d", len(got), len(users))
	}
	for i, u := range users {
		want := u.ServerUser()
		if got[i].Username != want.Username || got[i].Password != want.Password ||
			!reflect.DeepEqual(got[i].Permissions.Publish, want.Permissions.Publish) ||
			!reflect.DeepEqual(got[i].Permissions.Subscribe.Allow, want.Permissions.Subscribe.Allow) {
			t.Errorf("user %d reads back as %+v %+v %+v, want %+v %+v %+v", i, got[i], got[i].Permissions.Publish,
				got[i].Permissions.Subscribe, want, want.Permissions.Publish, want.Permissions.Subscribe)
		}
	}
	if missing, err := natsx.ReadUsersConfig(filepath.Join(t.TempDir(), "none.conf")); err != nil || missing != nil {
		t.Errorf("a missing file reads as %v, %v; want no users and no error", missing, err)
	}
}
