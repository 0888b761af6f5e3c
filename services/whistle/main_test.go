package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/authx"
)

// runWhistle runs the command line with args and returns what it printed on stdout.
func runWhistle(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot(env{})
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// dataWithKey returns a data folder holding a signing key, as `whistle up` leaves it.
func dataWithKey(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	if _, err := authx.LoadOrCreateKey(filepath.Join(data, "token.key")); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestTheTokenCommandPrintsATokenTheDataFoldersAuthorityVerifies(t *testing.T) {
	t.Parallel()
	data := dataWithKey(t)
	tests := []struct {
		name string
		args []string
		want authx.Principal
	}{
		{
			name: "an officer of a unit, one of its roster's people",
			args: []string{"--role", "officer", "--scope", "water", "--subject", "water.2"},
			want: authx.Principal{Subject: "water.2", Role: authx.RoleOfficer, Scope: "water"},
		},
		{
			name: "a grid worker of a grid, with a subject",
			args: []string{"--role", "grid-worker", "--scope", "xinhua-taoyuan-01", "--subject", "li.wei", "--ttl", "1h"},
			want: authx.Principal{Subject: "li.wei", Role: authx.RoleGridWorker, Scope: "xinhua-taoyuan-01"},
		},
		{
			name: "a supervisor of the city",
			args: []string{"--role", "supervisor", "--scope", "city"},
			want: authx.Principal{Subject: "supervisor@city", Role: authx.RoleSupervisor, Scope: authx.CityScope},
		},
	}
	for _, tc := range tests {
		out, err := runWhistle(t, append([]string{"token", "--data", data}, tc.args...)...)
		if err != nil {
			t.Fatalf("%s: whistle token: %v", tc.name, err)
		}
		tok := strings.TrimSpace(out)
		if strings.ContainsAny(tok, " \n") {
			t.Fatalf("%s: the output is not the token alone: %q", tc.name, out)
		}
		key, err := authx.LoadKey(filepath.Join(data, "token.key"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := authx.NewAuthority(key).Verify(tok)
		if err != nil {
			t.Fatalf("%s: the data folder's key does not verify the token: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: token carries %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestTheTokenCommandRefusesAnUnknownRoleOrScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"an unknown role", []string{"--role", "mayor", "--scope", "city"}, `unknown role "mayor"`},
		{"an unknown scope", []string{"--role", "officer", "--scope", "moon-base"}, `unknown scope "moon-base"`},
		{"no scope", []string{"--role", "officer"}, `"scope" not set`},
	}
	for _, tc := range tests {
		data := t.TempDir()
		out, err := runWhistle(t, append([]string{"token", "--data", data}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
		if out != "" {
			t.Errorf("%s: printed %q, want nothing", tc.name, out)
		}
	}
}

func TestServeRefusesToRunWithoutExternalNATSAndRedis(t *testing.T) {
	t.Parallel()
	_, err := runWhistle(t, "serve", "intake", "--data", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "WHISTLE_NATS_URL") {
		t.Fatalf("got %v, want an error naming WHISTLE_NATS_URL", err)
	}
}

func TestServeGatewayRefusesWhatItCannotUseNamingIt(t *testing.T) {
	t.Parallel()
	addrs := []string{"--intake-addr", "a:1", "--routing-addr", "b:1", "--department-addr", "c:1", "--escalation-addr", "d:1"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "gateway", "--data", t.TempDir()}, "--intake-addr is required"},
		{[]string{"serve", "gateway", "--intake-addr", "a:1"}, "--routing-addr is required"},
		{append([]string{"serve", "gateway"}, addrs...), "WHISTLE_REDIS_URL"},
		{append([]string{"serve", "gateway", "--rules", "rules.yaml"}, addrs...), "--rules is a service's setting"},
		{[]string{"serve", "intake", "--intake-addr", "a:1"}, "--intake-addr is for serve gateway"},
		{[]string{"serve", "nothing"}, "gateway"},
	} {
		if _, err := runWhistle(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

func TestTheServerCommandsSayHowToNameARedisCluster(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"up", "serve", "replay"} {
		out, err := runWhistle(t, cmd, "--help")
		if err != nil || !strings.Contains(out, "redis://10.0.0.1:6379?addr=10.0.0.2:6379&addr=10.0.0.3:6379") {
			t.Errorf("whistle %s --help does not show the cluster form of WHISTLE_REDIS_URL (%v):\n%s", cmd, err, out)
		}
	}
}

func TestTheTokenCommandChecksTheScopeAgainstTheCatalogItIsGiven(t *testing.T) {
	t.Parallel()
	catalog := filepath.Join(t.TempDir(), "city.yaml")
	city := `
city: {id: city, name: Harbour Town, streets: [{id: harbour, name: Harbour Street, communities: [{id: harbour-pier, name: Pier, grids: [harbour-pier-01]}]}]}
departments: [{id: port-authority, name: Port Authority}]
policies: {danger: {report_in: 10m, resolve: 1h}}
categories: [{id: debris, name: Debris, normal: danger}]
`
	if err := os.WriteFile(catalog, []byte(city), 0o644); err != nil {
		t.Fatal(err)
	}
	data := dataWithKey(t)
	if _, err := runWhistle(t, "token", "--data", data, "--catalog", catalog, "--role", "officer", "--scope", "port-authority"); err != nil {
		t.Errorf("a department of the given catalog was refused: %v", err)
	}
	if _, err := runWhistle(t, "token", "--data", data, "--catalog", catalog, "--role", "officer", "--scope", "water"); err == nil {
		t.Error("a department of the sample city was accepted against a catalog without it")
	}
}

func TestTheTokenCommandRefusesAScopeItsRoleCannotHold(t *testing.T) {
	t.Parallel()
	data := dataWithKey(t)
	tests := []struct {
		role, scope, mustBe string
	}{
		{"officer", "xinhua-taoyuan", "a unit id"}, // an area: the officer's inbox would be empty
		{"officer", "city", "a unit id"},
		{"officer", "urban-management", "urban-management-xinhua"}, // a department with units: name one
		{"grid-worker", "xinhua", "a grid id"},
		{"grid-worker", "water", "a grid id"},
		{"dispatcher", "water", "an area id (street, community or grid) or city"},
		{"supervisor", "water", "an area id (street, community or grid) or city"},
	}
	for _, tc := range tests {
		out, err := runWhistle(t, "token", "--data", data, "--role", tc.role, "--scope", tc.scope)
		if err == nil {
			t.Errorf("a %s token for %q was minted: %q", tc.role, tc.scope, out)
			continue
		}
		for _, want := range []string{tc.role, `"` + tc.scope + `"`, tc.mustBe} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal of a %s for %q, %q, does not say %q", tc.role, tc.scope, err, want)
			}
		}
	}
	for _, ok := range [][2]string{{"dispatcher", "xinhua"}, {"supervisor", "xinhua-taoyuan"}, {"dispatcher", "xinhua-taoyuan-01"}} {
		if _, err := runWhistle(t, "token", "--data", data, "--role", ok[0], "--scope", ok[1]); err != nil {
			t.Errorf("a %s for %q was refused: %v", ok[0], ok[1], err)
		}
	}
}

func TestTheTokenCommandRefusesADataFolderWithoutAKeyAndMakesNone(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	out, err := runWhistle(t, "token", "--data", data, "--role", "supervisor", "--scope", "city")
	key := filepath.Join(data, "token.key")
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "whistle up --data "+data) {
		t.Fatalf("got %q, %v; want an error naming %s and how to create it", out, err, key)
	}
	if _, err := os.Stat(key); !os.IsNotExist(err) {
		t.Errorf("token created %s (stat: %v)", key, err)
	}
}

func TestAnOfficersTokenNamesSomeoneOfTheUnitsRoster(t *testing.T) {
	t.Parallel()
	data := dataWithKey(t)
	out, err := runWhistle(t, "token", "--data", data, "--role", "officer", "--scope", "water")
	if err != nil {
		t.Fatal(err)
	}
	key, err := authx.LoadKey(filepath.Join(data, "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := authx.NewAuthority(key).Verify(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains([]string{"water.1", "water.2", "water.3"}, p.Subject) {
		t.Errorf("the default subject is %q; want the water officer on duty now", p.Subject)
	}
	if _, err := runWhistle(t, "token", "--data", data, "--role", "officer", "--scope", "water", "--subject", "stranger"); err == nil ||
		!strings.Contains(err.Error(), "not an officer of unit water") {
		t.Errorf("a stranger's token: %v; want a refusal naming the roster", err)
	}
}

func TestTheOpen311KeyCommandMintsAnIntegratorsKeyAndRefusesABadName(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	if _, err := authx.LoadOrCreateKey(filepath.Join(data, "token.key")); err != nil {
		t.Fatal(err)
	}
	out, err := runWhistle(t, "open311", "key", "--data", data, "--name", "hotline-12345")
	if err != nil {
		t.Fatalf("whistle open311 key: %v", err)
	}
	key, err := authx.LoadKey(filepath.Join(data, "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := authx.NewAuthority(key).Verify(strings.TrimSpace(out))
	if want := (authx.Principal{Subject: "hotline-12345", Role: authx.RoleIntegrator, Scope: authx.CityScope}); err != nil || got != want {
		t.Errorf("the key carries %+v (%v), want %+v", got, err, want)
	}
	for _, name := range []string{"", "a name with spaces", "open311-gateway"} {
		out, err := runWhistle(t, "open311", "key", "--data", data, "--name", name)
		if err == nil || out != "" {
			t.Errorf("--name %q: printed %q with error %v; want an error and nothing printed", name, out, err)
		}
	}
}

func TestTheLoginLinkCommandPrintsAOneTimeLinkThatIsNoToken(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	if _, err := authx.LoadOrCreateKey(filepath.Join(data, "token.key")); err != nil {
		t.Fatal(err)
	}
	out, err := runWhistle(t, "login-link", "--data", data, "--role", "officer", "--scope", "water", "--subject", "water.2",
		"--base", "https://whistle.city.example")
	if err != nil {
		t.Fatalf("whistle login-link: %v", err)
	}
	link, ok := strings.CutPrefix(strings.TrimSpace(out), "https://whistle.city.example/console/login?link=")
	if !ok {
		t.Fatalf("printed %q, want a link to the console's sign-in", out)
	}
	key, err := authx.LoadKey(filepath.Join(data, "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	authority := authx.NewAuthority(key)
	got, _, err := authority.VerifyLink(link)
	if want := (authx.Principal{Subject: "water.2", Role: authx.RoleOfficer, Scope: "water"}); err != nil || got != want {
		t.Errorf("the link signs in %+v (%v), want %+v", got, err, want)
	}
	if _, err := authority.Verify(link); err == nil {
		t.Error("the link is accepted as a token")
	}
	for _, args := range [][]string{
		{"--role", "integrator", "--scope", "city"},
		{"--role", "officer", "--scope", "water", "--ttl", "48h"},
		{"--role", "officer", "--scope", "moon-base"},
	} {
		out, err := runWhistle(t, append([]string{"login-link", "--data", data}, args...)...)
		if err == nil || out != "" {
			t.Errorf("login-link %v: printed %q with error %v; want an error and nothing printed", args, out, err)
		}
	}
}
