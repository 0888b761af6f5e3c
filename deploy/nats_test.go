package deploy

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
	"sigs.k8s.io/yaml"
)

// minNATSVersion is the oldest nats-server Whistle accepts (system.MinNATSVersion): the first
// that honours the Nats-Expected-Last-Subject-Sequence-Subject header.
var minNATSVersion = []int{2, 11, 0}

// checkNATSImage checks that a nats image's tag names a version Whistle accepts.
func checkNATSImage(image string) error {
	_, tag, ok := strings.Cut(image, ":")
	if !strings.HasPrefix(image, "nats:") || !ok {
		return fmt.Errorf("image %q is not the official nats image with a tag", image)
	}
	return checkNATSTag(tag)
}

// checkNATSTag checks that a tag of the nats image (2.15-alpine, 2.15.2) is at least minNATSVersion.
func checkNATSTag(tag string) error {
	m := regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?(?:-[a-z0-9.]+)?$`).FindStringSubmatch(tag)
	if m == nil {
		return fmt.Errorf("nats tag %q names no version", tag)
	}
	var v []int
	for _, s := range m[1:] {
		n, _ := strconv.Atoi(s) // a missing patch reads as 0, the oldest of its minor version
		v = append(v, n)
	}
	if slices.Compare(v, minNATSVersion) < 0 {
		return fmt.Errorf("nats %s is older than %d.%d.%d, which Whistle needs", tag, minNATSVersion[0], minNATSVersion[1], minNATSVersion[2])
	}
	return nil
}

// natsUser is a NATS user and its permissions, whatever file it was read from.
type natsUser struct {
	Password                    string
	PubAllow, PubDeny, SubAllow []string
}

// natsUsersOfFile reads the users of a NATS server config file, resolving its includes and its
// variables (from the environment) as nats-server does.
func natsUsersOfFile(path string) (map[string]natsUser, error) {
	m, err := conf.ParseFile(path)
	if err != nil {
		return nil, err
	}
	auth, _ := m["authorization"].(map[string]any)
	list, _ := auth["users"].([]any)
	return natsUsersOf(list)
}

// natsUsersOf reads users from the parsed form NATS config and Helm values share.
func natsUsersOf(list []any) (map[string]natsUser, error) {
	users := map[string]natsUser{}
	for _, item := range list {
		u, _ := item.(map[string]any)
		name, _ := u["user"].(string)
		if name == "" {
			return nil, fmt.Errorf("a user without a name: %v", u)
		}
		pw, _ := u["password"].(string)
		perms, _ := u["permissions"].(map[string]any)
		pub, _ := perms["publish"].(map[string]any)
		sub, _ := perms["subscribe"].(map[string]any)
		users[name] = natsUser{Password: pw, PubAllow: strs(pub["allow"]), PubDeny: strs(pub["deny"]), SubAllow: strs(sub["allow"])}
	}
	return users, nil
}

// strs reads a list of strings, sorted, so that two files may order them differently.
func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, s := range l {
		str, _ := s.(string)
		out = append(out, str)
	}
	slices.Sort(out)
	return out
}

// samePermissions returns how got's users differ from want's, passwords aside.
func samePermissions(got, want map[string]natsUser) []string {
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[name]
		w := want[name]
		switch {
		case !ok:
			diffs = append(diffs, "user "+name+" is missing")
		case !slices.Equal(g.PubAllow, w.PubAllow) || !slices.Equal(g.PubDeny, w.PubDeny) || !slices.Equal(g.SubAllow, w.SubAllow):
			diffs = append(diffs, fmt.Sprintf("user %s may publish %v less %v and subscribe %v; the program gives it %v less %v and %v",
				name, g.PubAllow, g.PubDeny, g.SubAllow, w.PubAllow, w.PubDeny, w.SubAllow))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, "user "+name+" is not one of the program's")
		}
	}
	return diffs
}

// passwordVariable is the environment variable that holds a user's password in deploy/'s files.
func passwordVariable(user string) string {
	return "WHISTLE_NATS_" + strings.ToUpper(user) + "_PASSWORD"
}

// natsValues is the part of the NATS chart's values the checks read.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool `json:"enabled"`
				PVC     struct {
					Enabled bool `json:"enabled"`
				} `json:"pvc"`
			} `json:"fileStore"`
		} `json:"jetstream"`
		Merge struct {
			Authorization struct {
				Users []any `json:"users"`
			} `json:"authorization"`
		} `json:"merge"`
	} `json:"config"`
	Container struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
		Env map[string]struct {
			ValueFrom struct {
				SecretKeyRef struct {
					Name string `json:"name"`
					Key  string `json:"key"`
				} `json:"secretKeyRef"`
			} `json:"valueFrom"`
		} `json:"env"`
	} `json:"container"`
}

// checkNATSValues checks the NATS chart's values: a cluster of nodes (or one server when nodes is
// 1) with JetStream on volumes, an image Whistle accepts, and users with the permissions of want,
// each password an environment variable read from its key of the Secret whistle-nats-users.
func checkNATSValues(path string, nodes int, want map[string]natsUser) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(path+": "+format, args...)) }
	b, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	var v natsValues
	if err := yaml.Unmarshal(b, &v); err != nil {
		return []error{fmt.Errorf("%s: %w", path, err)}
	}
	c := v.Config
	if clustered := nodes > 1; c.Cluster.Enabled != clustered || clustered && c.Cluster.Replicas != nodes {
		bad("cluster enabled %v with %d replicas, want %d nodes", c.Cluster.Enabled, c.Cluster.Replicas, nodes)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled {
		bad("JetStream does not keep its files on a persistent volume")
	}
	if v.Container.Image.Repository != "nats" {
		bad("image %q is not the official nats image", v.Container.Image.Repository)
	} else if err := checkNATSTag(v.Container.Image.Tag); err != nil {
		bad("%v", err)
	}
	users, err := natsUsersOf(c.Merge.Authorization.Users)
	if err != nil {
		return append(errs, err)
	}
	for _, d := range samePermissions(users, want) {
		bad("%s", d)
	}
	for name, u := range users {
		if u.Password != "<< $"+passwordVariable(name)+" >>" {
			bad("user %s's password is %q, want the variable %s", name, u.Password, passwordVariable(name))
		}
		ref := v.Container.Env[passwordVariable(name)].ValueFrom.SecretKeyRef
		if ref.Name != "whistle-nats-users" || ref.Key != name {
			bad("%s is not key %s of the Secret whistle-nats-users", passwordVariable(name), name)
		}
	}
	return errs
}

func TestTheDeployedNATSUsersHaveThePermissionsTheProgramGivesThem(t *testing.T) {
	// Not parallel: the compose file's NATS config reads the passwords from the environment.
	w := startWhistle(t, shortCatalog(t))
	program := usersFile(t, w.data)
	for _, name := range append(slices.Clone(services), "tools") {
		if _, ok := program[name]; !ok {
			t.Fatalf("the program wrote no NATS user %s: %v", name, slices.Sorted(maps.Keys(program)))
		}
	}
	for name := range program {
		t.Setenv(passwordVariable(name), name+"-secret")
	}
	t.Setenv("NATS_SERVER_NAME", "nats-1")

	t.Run("compose", func(t *testing.T) {
		composed, err := natsUsersOfFile(filepath.Join(deployDir(t), "nats", "nats.conf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range samePermissions(composed, program) {
			t.Error(d)
		}
		for name, u := range composed {
			if u.Password != name+"-secret" {
				t.Errorf("user %s's password is not %s", name, passwordVariable(name))
			}
		}
	})
	t.Run("kubernetes", func(t *testing.T) {
		for _, c := range []struct {
			path  string
			nodes int
		}{
			{filepath.Join(k8sDir(t), "nats-values.yaml"), 3},
			{filepath.Join(k8sDir(t), "overlays", "single-node", "nats-values.yaml"), 1},
		} {
			for _, err := range checkNATSValues(c.path, c.nodes, program) {
				t.Error(err)
			}
		}
	})
	t.Run("a user given another permission is found", func(t *testing.T) {
		changed := maps.Clone(program)
		u := changed["department"]
		u.PubAllow = append(slices.Clone(u.PubAllow), "whistle.*.*.breached")
		slices.Sort(u.PubAllow)
		changed["department"] = u
		if d := samePermissions(changed, program); len(d) != 1 || !strings.Contains(d[0], "user department") {
			t.Errorf("samePermissions = %q, want the department user named", d)
		}
	})
}

func TestANATSImageOlderThanWhistleNeedsIsRefused(t *testing.T) {
	t.Parallel()
	for tag, ok := range map[string]bool{"2.15-alpine": true, "2.11.0": true, "2.11": true, "2.10.22-alpine": false, "2.10": false, "latest": false} {
		if err := checkNATSTag(tag); (err == nil) != ok {
			t.Errorf("checkNATSTag(%q) = %v, want ok %v", tag, err, ok)
		}
	}
}
