package deploy

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// composeEnv is what deploy/make-env.sh writes into deploy/.env, with values of no importance.
var composeEnv = []string{
	"WHISTLE_NATS_TOOLS_PASSWORD=tools-pw",
	"WHISTLE_NATS_INTAKE_PASSWORD=intake-pw",
	"WHISTLE_NATS_ROUTING_PASSWORD=routing-pw",
	"WHISTLE_NATS_DEPARTMENT_PASSWORD=department-pw",
	"WHISTLE_NATS_ESCALATION_PASSWORD=escalation-pw",
	"WHISTLE_REDIS_PASSWORD=redis-pw",
	"WHISTLE_REDIS_INTAKE_PASSWORD=intake-redis-pw",
	"WHISTLE_REDIS_ROUTING_PASSWORD=routing-redis-pw",
	"WHISTLE_REDIS_DEPARTMENT_PASSWORD=department-redis-pw",
	"WHISTLE_REDIS_ESCALATION_PASSWORD=escalation-redis-pw",
	"WHISTLE_REDIS_GATEWAY_PASSWORD=gateway-redis-pw",
	"GRAFANA_ADMIN_PASSWORD=grafana-pw",
	"WHISTLE_TOKEN_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
}

// loadCompose loads dir/compose.yaml with the compose specification's own loader, with env as
// the only environment (neither the process's nor a .env file is read).
func loadCompose(dir string, env []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv(env), cli.WithName("whistle"))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// natsNodes are the compose file's three NATS servers.
var natsNodes = []string{"nats-1", "nats-2", "nats-3"}

// checkCompose returns what is wrong with the project loaded from dir: every Whistle service and
// the gateway runs `whistle serve NAME` as two replicas, hardened, with its own Redis user, a
// health check and ports published on loopback alone; every service has its own NATS user, and
// the gateway none but the services' gRPC addresses; the NATS cluster has three nodes with health
// checks; Redis has one; Prometheus loads the alert rules and scrapes every service and the
// gateway; Grafana is provisioned with the dashboard and the datasource; and every file the
// project mounts exists.
func checkCompose(p *types.Project, dir string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, name := range append(append(slices.Clone(processes), natsNodes...), "redis", "otel-collector", "prometheus", "grafana") {
		if _, ok := p.Services[name]; !ok {
			bad("service %s is missing", name)
		}
	}
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					bad("%s mounts %s, which does not exist", s.Name, v.Source)
				}
			}
		}
	}
	for _, name := range processes {
		s, ok := p.Services[name]
		if !ok {
			continue
		}
		if got := s.GetScale(); got != 2 {
			bad("%s runs %d replicas, want 2", name, got)
		}
		if len(s.Command) < 2 || s.Command[0] != "serve" || s.Command[1] != name {
			bad("%s runs %q, want serve %s", name, s.Command, name)
		}
		if !hasFlag(s.Command, "--http", "0.0.0.0:7080") {
			bad("%s does not serve /healthz and /metrics on 0.0.0.0:7080, where Prometheus scrapes: %q", name, s.Command)
		}
		env := func(k string) string {
			if v := s.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		if name == gatewayName {
			errs = append(errs, checkComposeGateway(p, s)...)
		} else {
			if !hasFlag(s.Command, "--replicas", "3") {
				bad("%s does not create the streams with --replicas 3 on the three-node cluster: %q", name, s.Command)
			}
			if env("WHISTLE_NATS_USER") != name {
				bad("%s connects to NATS as %q, want its own user %s", name, env("WHISTLE_NATS_USER"), name)
			}
			if env("WHISTLE_NATS_PASSWORD") != name+"-pw" {
				bad("%s's NATS password is not WHISTLE_NATS_%s_PASSWORD", name, strings.ToUpper(name))
			}
			for _, n := range natsNodes {
				if !strings.Contains(env("WHISTLE_NATS_URL"), "nats://"+n+":4222") {
					bad("%s's WHISTLE_NATS_URL %q leaves out %s", name, env("WHISTLE_NATS_URL"), n)
				}
			}
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				bad("%s publishes its port %d on %q, want 127.0.0.1 alone", name, port.Target, port.HostIP)
			}
		}
		if !strings.HasPrefix(env("WHISTLE_REDIS_URL"), "redis://") || !strings.Contains(env("WHISTLE_REDIS_URL"), "@redis:6379") {
			bad("%s's WHISTLE_REDIS_URL %q does not name the redis service", name, env("WHISTLE_REDIS_URL"))
		}
		if !strings.HasPrefix(env("WHISTLE_REDIS_URL"), "redis://"+name+":"+name+"-redis-pw@") {
			bad("%s does not connect to Redis as its own user %s with WHISTLE_REDIS_%s_PASSWORD: %q", name, name, strings.ToUpper(name), env("WHISTLE_REDIS_URL"))
		}
		if !strings.Contains(env("OTEL_EXPORTER_OTLP_ENDPOINT"), "otel-collector:4317") {
			bad("%s sends no traces to the collector", name)
		}
		if h := s.HealthCheck; h == nil || h.Disable || len(h.Test) < 3 || h.Test[0] != "CMD" || !slices.Contains(h.Test, "health") {
			bad("%s has no health check running `whistle health`: %v", name, s.HealthCheck)
		}
		if !s.ReadOnly {
			bad("%s's root file system is writable", name)
		}
		if u := strings.Split(s.User, ":")[0]; u == "" || u == "0" || u == "root" {
			bad("%s runs as user %q, want a non-root one", name, s.User)
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			bad("%s keeps its capabilities", name)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			bad("%s may gain privileges", name)
		}
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 || s.Deploy.Resources.Limits.NanoCPUs == 0 {
			bad("%s has no CPU and memory limits", name)
		}
		if !slices.ContainsFunc(s.Secrets, func(sec types.ServiceSecretConfig) bool {
			return sec.Source == "token_key" && sec.Target == "/var/lib/whistle/token.key"
		}) {
			bad("%s does not get the shared token key as /var/lib/whistle/token.key", name)
		}
	}
	if sec, ok := p.Secrets["token_key"]; !ok || sec.Environment != "WHISTLE_TOKEN_KEY" {
		bad("the token_key secret does not come from WHISTLE_TOKEN_KEY")
	}
	for _, name := range append(slices.Clone(natsNodes), "redis", "prometheus", "grafana") {
		if s, ok := p.Services[name]; ok && (s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0) {
			bad("%s has no health check", name)
		}
	}
	for _, n := range natsNodes {
		s, ok := p.Services[n]
		if !ok {
			continue
		}
		if v := s.Environment["NATS_SERVER_NAME"]; v == nil || *v != n {
			bad("%s does not name itself %s", n, n)
		}
		if err := checkNATSImage(s.Image); err != nil {
			bad("%s: %v", n, err)
		}
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Target == "/data"
		}) {
			bad("%s keeps JetStream's files on no volume of its own", n)
		}
	}
	errs = append(errs, checkComposePrometheus(p)...)
	errs = append(errs, checkComposeGrafana(p)...)
	return errs
}

// gatewayFlags are the flags `whistle serve gateway` reads (services/whistle/main.go's
// gatewayFlags and the services' addresses); it refuses every other server flag at start, and a
// check here refuses it before a deployment does.
var gatewayFlags = []string{"--data", "--http", "--pprof", "--catalog", "--map-tiles",
	"--intake-addr", "--routing-addr", "--department-addr", "--escalation-addr"}

// checkComposeGateway checks what the gateway needs beyond what every process does: each
// service's address, the compose service of that name on the port its --grpc listens on; no NATS,
// neither its environment nor a wait for a node; a wait for Redis and each service; a flag
// `serve gateway` refuses; and its HTTP published, where people reach the console.
func checkComposeGateway(p *types.Project, s types.ServiceConfig) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(s.Name+" "+format, args...)) }
	for _, svc := range services {
		flag := "--" + svc + "-addr"
		want := svc + ":?"
		if target, ok := p.Services[svc]; ok {
			if i := slices.Index(target.Command, "--grpc"); i >= 0 && i+1 < len(target.Command) {
				if _, port, err := net.SplitHostPort(target.Command[i+1]); err == nil {
					want = svc + ":" + port
				}
			}
		}
		if !hasFlag(s.Command, flag, want) {
			bad("does not find the %s service at %s, where its --grpc listens: %q", svc, want, s.Command)
		}
		if _, ok := s.DependsOn[svc]; !ok {
			bad("does not wait for %s to start", svc)
		}
	}
	if d, ok := s.DependsOn["redis"]; !ok || d.Condition != types.ServiceConditionHealthy {
		bad("does not wait for redis to be healthy, though it connects to it as it starts")
	}
	for _, n := range natsNodes {
		if _, ok := s.DependsOn[n]; ok {
			bad("waits for %s, though it needs no NATS", n)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		if strings.HasPrefix(k, "WHISTLE_NATS_") {
			bad("needs no NATS but is given %s", k)
		}
	}
	for _, a := range s.Command[min(2, len(s.Command)):] {
		if f, _, _ := strings.Cut(a, "="); strings.HasPrefix(f, "--") && !slices.Contains(gatewayFlags, f) {
			bad("is given %s, a flag serve gateway refuses", f)
		}
	}
	if !slices.ContainsFunc(s.Ports, func(port types.ServicePortConfig) bool { return port.Target == 7080 }) {
		bad("does not publish its HTTP port 7080, where people reach the console and Open311")
	}
	return errs
}

// hasFlag reports whether args holds flag followed by value.
func hasFlag(args []string, flag, value string) bool {
	i := slices.Index(args, flag)
	return i >= 0 && i+1 < len(args) && args[i+1] == value
}

// hostPath returns the file on the host that the service sees at target, through a bind mount.
func hostPath(s types.ServiceConfig, target string) (string, bool) {
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if target == v.Target {
			return v.Source, true
		}
		if rel, ok := strings.CutPrefix(target, strings.TrimSuffix(v.Target, "/")+"/"); ok {
			return filepath.Join(v.Source, rel), true
		}
	}
	return "", false
}

// promConfig is the part of prometheus.yml the checks read.
type promConfig struct {
	RuleFiles     []string `json:"rule_files"`
	ScrapeConfigs []struct {
		JobName     string `json:"job_name"`
		DNSSDConfig []struct {
			Names []string `json:"names"`
			Port  int      `json:"port"`
		} `json:"dns_sd_configs"`
	} `json:"scrape_configs"`
}

// checkComposePrometheus checks that Prometheus's configuration, as the container sees it, loads
// the alert rules of deploy/prometheus/alerts.yaml and scrapes every replica of every service and
// of the gateway.
func checkComposePrometheus(p *types.Project) []error {
	s, ok := p.Services["prometheus"]
	if !ok {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	cfgPath := ""
	for i, a := range s.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			cfgPath = v
		} else if a == "--config.file" && i+1 < len(s.Command) {
			cfgPath = s.Command[i+1]
		}
	}
	host, ok := hostPath(s, cfgPath)
	if !ok {
		return append(errs, fmt.Errorf("prometheus's --config.file %q is not mounted from deploy/", cfgPath))
	}
	b, err := os.ReadFile(host)
	if err != nil {
		return append(errs, fmt.Errorf("prometheus: %w", err))
	}
	var cfg promConfig
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return append(errs, fmt.Errorf("prometheus: %s: %w", host, err))
	}
	loadsAlerts := false
	for _, rf := range cfg.RuleFiles {
		if h, ok := hostPath(s, rf); ok && sameFile(h, filepath.Join(p.WorkingDir, "prometheus", "alerts.yaml")) {
			loadsAlerts = true
		}
	}
	if !loadsAlerts {
		bad("prometheus does not load deploy/prometheus/alerts.yaml (rule_files %v)", cfg.RuleFiles)
	}
	scraped := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "whistle" {
			continue
		}
		for _, d := range sc.DNSSDConfig {
			for _, n := range d.Names {
				scraped[n] = d.Port == 7080
			}
		}
	}
	for _, name := range processes {
		if !scraped[name] {
			bad("prometheus's job whistle does not scrape every replica of %s on port 7080", name)
		}
	}
	return errs
}

// sameFile reports whether a and b name one file.
func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// checkComposeGrafana checks that Grafana is provisioned, as the container sees its folders,
// with the Prometheus datasource and deploy/grafana/dashboards/whistle.json.
func checkComposeGrafana(p *types.Project) []error {
	s, ok := p.Services["grafana"]
	if !ok {
		return nil
	}
	var errs []error
	var ds struct {
		Datasources []struct {
			UID  string `json:"uid"`
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"datasources"`
	}
	if err := readProvisioning(s, "/etc/grafana/provisioning/datasources/prometheus.yaml", &ds); err != nil {
		errs = append(errs, err)
	} else if !slices.ContainsFunc(ds.Datasources, func(d struct {
		UID  string `json:"uid"`
		Type string `json:"type"`
		URL  string `json:"url"`
	}) bool {
		return d.UID == "prometheus" && d.Type == "prometheus" && d.URL == "http://prometheus:9090"
	}) {
		errs = append(errs, fmt.Errorf("grafana has no datasource uid prometheus at http://prometheus:9090"))
	}
	var dash struct {
		Providers []struct {
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := readProvisioning(s, "/etc/grafana/provisioning/dashboards/whistle.yaml", &dash); err != nil {
		return append(errs, err)
	}
	found := false
	for _, pr := range dash.Providers {
		if h, ok := hostPath(s, pr.Options.Path+"/whistle.json"); ok && sameFile(h, filepath.Join(p.WorkingDir, "grafana", "dashboards", "whistle.json")) {
			found = true
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("grafana's dashboard providers do not load deploy/grafana/dashboards/whistle.json"))
	}
	return errs
}

// readProvisioning decodes the file Grafana sees at target.
func readProvisioning(s types.ServiceConfig, target string, into any) error {
	host, ok := hostPath(s, target)
	if !ok {
		return fmt.Errorf("grafana: %s is not mounted from deploy/", target)
	}
	b, err := os.ReadFile(host)
	if err != nil {
		return fmt.Errorf("grafana: %w", err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		return fmt.Errorf("grafana: %s: %w", host, err)
	}
	return nil
}

func TestTheComposeFileRunsEveryServiceAsTheDesignSays(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(deployDir(t), composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	if errs := checkCompose(p, deployDir(t)); len(errs) > 0 {
		t.Errorf("deploy/compose.yaml:\n%s", joinErrors(errs))
	}
}

func TestTheComposeFileRefusesToLoadWithoutItsSecrets(t *testing.T) {
	t.Parallel()
	_, err := loadCompose(deployDir(t), nil)
	if err == nil || !strings.Contains(err.Error(), "make-env.sh") {
		t.Fatalf("loading without the secrets: %v; want an error naming make-env.sh", err)
	}
}

// makeEnv runs make-env.sh in the copy of deploy/ at dir and returns the variables it wrote.
func makeEnv(t *testing.T, dir string) []string {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, ".env")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err) // a developer's own, copied with the rest
	}
	cmd := exec.Command("bash", filepath.Join(dir, "make-env.sh"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-env.sh: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			env = append(env, line)
		}
	}
	return env
}

// envNames returns the names of the variables of env, NAME=value each, sorted.
func envNames(env []string) []string {
	var names []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func TestMakeEnvWritesEverySecretTheComposeFileReads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit *edit
		want string // what loading the compose file with the .env names; empty for no error
	}{
		{"as shipped", nil, ""},
		{"the gateway's Redis password left out", &edit{"make-env.sh", "ESCALATION GATEWAY; do", "ESCALATION; do"}, "WHISTLE_REDIS_GATEWAY_PASSWORD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyTree(t, deployDir(t), dir)
			if tc.edit != nil {
				tc.edit.apply(t, dir)
			}
			env := makeEnv(t, dir)
			_, err := loadCompose(dir, env)
			switch {
			case tc.want != "":
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("loading with what the broken make-env.sh wrote: %v; want an error naming %s", err, tc.want)
				}
				return
			case err != nil:
				t.Fatalf("loading with what make-env.sh wrote: %v", err)
			}
			for _, kv := range env {
				if name, value, _ := strings.Cut(kv, "="); value == "" {
					t.Errorf("make-env.sh writes %s empty", name)
				}
			}
			// The variables the other tests load the file with are the ones make-env.sh writes.
			if got, want := envNames(env), envNames(composeEnv); !slices.Equal(got, want) {
				t.Errorf("make-env.sh writes %v; the tests load the compose file with %v", got, want)
			}
		})
	}
}

func TestABrokenComposeFileFailsItsCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit edit
		want string
	}{
		{"one replica", edit{"compose.yaml", "    replicas: 2\n", "    replicas: 1\n"}, "runs 1 replicas, want 2"},
		{"no health check", edit{"compose.yaml", `    test: ["CMD", "/usr/local/bin/whistle", "health", "--http", "127.0.0.1:7080"]`, `    disable: true`}, "no health check running `whistle health`"},
		{"root", edit{"compose.yaml", `  user: "65532:65532"`, `  user: "0:0"`}, `runs as user "0:0"`},
		{"writable", edit{"compose.yaml", "  read_only: true\n  cap_drop", "  read_only: false\n  cap_drop"}, "root file system is writable"},
		{"a shared NATS user", edit{"compose.yaml", "      WHISTLE_NATS_USER: routing\n", "      WHISTLE_NATS_USER: tools\n"}, "connects to NATS as \"tools\""},
		{"a shared Redis user", edit{"compose.yaml", "redis://department:${WHISTLE_REDIS_DEPARTMENT_PASSWORD", "redis://intake:${WHISTLE_REDIS_INTAKE_PASSWORD"}, "department does not connect to Redis as its own user"},
		{"a node left out of the URL", edit{"compose.yaml", "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222", "nats://nats-1:4222,nats://nats-2:4222"}, "leaves out nats-3"},
		{"streams of one replica", edit{"compose.yaml", `"serve", "escalation", "--data", "/var/lib/whistle", "--grpc", "0.0.0.0:7070", "--http", "0.0.0.0:7080", "--replicas", "3"`, `"serve", "escalation", "--data", "/var/lib/whistle", "--grpc", "0.0.0.0:7070", "--http", "0.0.0.0:7080", "--replicas", "1"`}, "escalation does not create the streams with --replicas 3"},
		{"an old NATS", edit{"compose.yaml", "image: nats:2.15-alpine", "image: nats:2.10-alpine"}, "older than"},
		{"rules not loaded", edit{"prometheus/prometheus.yml", "  - /etc/prometheus/alerts.yaml\n", "  - /etc/prometheus/other.yaml\n"}, "does not load deploy/prometheus/alerts.yaml"},
		{"a service not scraped", edit{"prometheus/prometheus.yml", "names: [intake, routing, department, escalation, gateway]", "names: [intake, routing, department, gateway]"}, "every replica of escalation"},
		{"the gateway not scraped", edit{"prometheus/prometheus.yml", "names: [intake, routing, department, escalation, gateway]", "names: [intake, routing, department, escalation]"}, "every replica of gateway"},
		{"the gateway in front of the wrong service", edit{"compose.yaml", `"--routing-addr", "routing:7070"`, `"--routing-addr", "intake:7070"`}, "gateway does not find the routing service at routing:7070"},
		{"the gateway on another port than the service's", edit{"compose.yaml", `"--department-addr", "department:7070"`, `"--department-addr", "department:7080"`}, "gateway does not find the department service at department:7070"},
		{"the gateway with a NATS user", edit{"compose.yaml", "      OTEL_SERVICE_NAME: whistle-gateway\n", "      OTEL_SERVICE_NAME: whistle-gateway\n      WHISTLE_NATS_USER: tools\n"}, "gateway needs no NATS but is given WHISTLE_NATS_USER"},
		{"the gateway sharing a Redis user", edit{"compose.yaml", "redis://gateway:${WHISTLE_REDIS_GATEWAY_PASSWORD", "redis://intake:${WHISTLE_REDIS_INTAKE_PASSWORD"}, "gateway does not connect to Redis as its own user"},
		{"the gateway given a service's flag", edit{"compose.yaml", `"serve", "gateway", "--data", "/var/lib/whistle",`, `"serve", "gateway", "--data", "/var/lib/whistle", "--replicas", "3",`}, "gateway is given --replicas, a flag serve gateway refuses"},
		{"the gateway not waiting for a service", edit{"compose.yaml", "      escalation: {condition: service_started}\n", ""}, "gateway does not wait for escalation to start"},
		{"the console on every interface", edit{"compose.yaml", `ports: ["127.0.0.1:8080-8081:7080"]`, `ports: ["8080-8081:7080"]`}, "gateway publishes its port 7080"},
		{"the gateway without its own health check", edit{"compose.yaml", "      OTEL_SERVICE_NAME: whistle-gateway\n", "      OTEL_SERVICE_NAME: whistle-gateway\n    healthcheck: {disable: true}\n"}, "gateway has no health check running `whistle health`"},
		{"dashboard folder moved", edit{"grafana/provisioning/dashboards/whistle.yaml", "path: /var/lib/grafana/dashboards", "path: /var/lib/grafana/other"}, "do not load deploy/grafana/dashboards/whistle.json"},
		{"a mount of a missing file", edit{"compose.yaml", `"./nats:/etc/nats/whistle:ro", "nats-2:/data"`, `"./natz:/etc/nats/whistle:ro", "nats-2:/data"`}, "natz, which does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyTree(t, deployDir(t), dir)
			tc.edit.apply(t, dir)
			p, err := loadCompose(dir, composeEnv)
			if err != nil {
				t.Fatal(err)
			}
			if got := joinErrors(checkCompose(p, dir)); !strings.Contains(got, tc.want) {
				t.Errorf("check of the broken file found:\n%s\nwant a problem naming %q", got, tc.want)
			}
		})
	}
}
