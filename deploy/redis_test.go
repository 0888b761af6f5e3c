package deploy

import (
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// programRedisUsers runs `whistle redis-users` and returns each user's ACL rules as the
// program gives them: the words after the password.
func programRedisUsers(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command(whistleBinary(t), "redis-users").Output()
	if err != nil {
		t.Fatalf("whistle redis-users: %v", err)
	}
	users := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		words := strings.Fields(line)
		if len(words) < 4 || words[1] != "on" || words[2] != ">PASSWORD" {
			t.Fatalf("whistle redis-users printed %q, want NAME on >PASSWORD RULES...", line)
		}
		users[words[0]] = words[3:]
	}
	return users
}

// redisUsersOfArgs returns the users a redis-server command line defines with --user: each
// user's password (after its >) and rules.
func redisUsersOfArgs(args []string) (passwords map[string]string, rules map[string][]string) {
	passwords, rules = map[string]string{}, map[string][]string{}
	for i := 0; i < len(args); i++ {
		if args[i] != "--user" || i+3 >= len(args) {
			continue
		}
		name := args[i+1]
		j := i + 2
		var words []string
		for ; j < len(args) && !strings.HasPrefix(args[j], "--"); j++ {
			words = append(words, args[j])
		}
		for _, w := range words {
			if p, ok := strings.CutPrefix(w, ">"); ok {
				passwords[name] = p
			} else if w != "on" {
				rules[name] = append(rules[name], w)
			}
		}
		i = j - 1
	}
	return passwords, rules
}

// sameRedisUsers returns how the users a Redis defines differ from the program's.
func sameRedisUsers(got, want map[string][]string) []string {
	var diffs []string
	for name, rules := range want {
		if !slices.Equal(got[name], rules) {
			diffs = append(diffs, fmt.Sprintf("user %s has the rules %q, the program gives %q", name, got[name], rules))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("user %s is no service's", name))
		}
	}
	slices.Sort(diffs)
	return diffs
}

func TestTheDeployedRedisUsersHaveTheRulesTheProgramGivesThem(t *testing.T) {
	t.Parallel()
	program := programRedisUsers(t)
	for _, name := range processes {
		if _, ok := program[name]; !ok {
			t.Fatalf("the program gives %s no Redis user", name)
		}
	}
	t.Run("compose", func(t *testing.T) {
		p, err := loadCompose(deployDir(t), composeEnv)
		if err != nil {
			t.Fatal(err)
		}
		passwords, rules := redisUsersOfArgs(p.Services["redis"].Command)
		for _, d := range sameRedisUsers(rules, program) {
			t.Error(d)
		}
		for _, name := range processes {
			if passwords[name] != name+"-redis-pw" {
				t.Errorf("Redis user %s's password is not WHISTLE_REDIS_%s_PASSWORD", name, strings.ToUpper(name))
			}
		}
	})
	t.Run("kubernetes", func(t *testing.T) {
		m, err := build(filesys.MakeFsOnDisk(), filepath.Join(k8sDir(t), "overlays", "single-node"))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range m.statefulSets {
			if s.Name != "redis" {
				continue
			}
			found = true
			c := s.Spec.Template.Spec.Containers[0]
			passwords, rules := redisUsersOfArgs(c.Args)
			for _, d := range sameRedisUsers(rules, program) {
				t.Error(d)
			}
			for _, name := range processes {
				want := "$(REDIS_" + strings.ToUpper(name) + "_PASSWORD)"
				ok := passwords[name] == want && slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
					return e.Name == want[2:len(want)-1] && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
						e.ValueFrom.SecretKeyRef.Name == "whistle-redis" && e.ValueFrom.SecretKeyRef.Key == name+"-password"
				})
				if !ok {
					t.Errorf("Redis user %s's password is not key %s-password of the Secret whistle-redis", name, name)
				}
			}
		}
		if !found {
			t.Fatal("the single-node overlay runs no redis StatefulSet")
		}
	})
	t.Run("a user given another rule is found", func(t *testing.T) {
		changed := map[string][]string{}
		for name, rules := range program {
			changed[name] = rules
		}
		changed["routing"] = append(slices.Clone(changed["routing"]), "~intake:*")
		if d := sameRedisUsers(changed, program); len(d) != 1 || !strings.Contains(d[0], "user routing") {
			t.Errorf("sameRedisUsers = %q, want the routing user named", d)
		}
	})
	t.Run("a user left out is found", func(t *testing.T) {
		changed := maps.Clone(program)
		delete(changed, gatewayName)
		if d := sameRedisUsers(changed, program); len(d) != 1 || !strings.Contains(d[0], "user gateway") {
			t.Errorf("sameRedisUsers = %q, want the gateway user named", d)
		}
	})
}
