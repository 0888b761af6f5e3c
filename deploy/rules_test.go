package deploy

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// promql parses PromQL as Prometheus does.
var promql = parser.NewParser(parser.Options{})

// prometheusOwn are the series Prometheus makes itself rather than scrapes: an alert or a panel
// may name them beside what the program exports.
var prometheusOwn = []string{"up"}

// query is one PromQL expression of the operator's view and where it stands.
type query struct{ where, expr string }

// alertQueries parses the alert rules as Prometheus loads them (unknown fields refused, every
// expression and template checked) and returns their expressions.
func alertQueries(path string) ([]query, error) {
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", path, errs)
	}
	var qs []query
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				return nil, fmt.Errorf("%s: group %s holds a rule that is not an alert", path, g.Name)
			}
			qs = append(qs, query{where: "alert " + r.Alert, expr: r.Expr})
		}
	}
	return qs, nil
}

// grafanaVariable is how a dashboard's queries name a Grafana variable or a built-in one.
var grafanaVariable = regexp.MustCompile(`\$(__rate_interval|__interval|__range|[a-z_]+)`)

// grafanaDuration is what a range variable stands for when a query is parsed outside Grafana.
var grafanaDuration = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}

// labelValues is a variable's query of the values of a label of one metric.
var labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`)

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
	// Templating holds the variables, whose queries name metrics too.
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Datasource datasource      `json:"datasource"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string     `json:"title"`
	Type       string     `json:"type"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		Expr       string     `json:"expr"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboardQueries reads a dashboard and returns every query of its panels and variables, with
// Grafana's variables put in as Grafana would, so that Prometheus's parser can read them. Every
// panel that is not a row must query the provisioned Prometheus datasource.
func dashboardQueries(path string) ([]query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if d.UID == "" || d.Title == "" {
		return nil, fmt.Errorf("%s: a dashboard needs a uid and a title", path)
	}
	vars := map[string]bool{}
	var qs []query
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if json.Unmarshal(v.Query, &s) != nil {
				return nil, fmt.Errorf("%s: variable %s: unreadable query", path, v.Name)
			}
			q.Query = s
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(q.Query))
		if m == nil {
			return nil, fmt.Errorf("%s: variable %s: query %q is not label_values(metric, label)", path, v.Name, q.Query)
		}
		if v.Datasource.UID != "prometheus" {
			return nil, fmt.Errorf("%s: variable %s does not query the datasource prometheus", path, v.Name)
		}
		qs = append(qs, query{where: "variable " + v.Name, expr: m[1]})
	}
	var walk func([]panel) error
	walk = func(ps []panel) error {
		for _, p := range ps {
			if p.Type == "row" {
				if err := walk(p.Panels); err != nil {
					return err
				}
				continue
			}
			if len(p.Targets) == 0 {
				return fmt.Errorf("%s: panel %q has no query", path, p.Title)
			}
			if p.Datasource.UID != "prometheus" {
				return fmt.Errorf("%s: panel %q does not query the datasource prometheus", path, p.Title)
			}
			for _, tg := range p.Targets {
				expr := grafanaVariable.ReplaceAllStringFunc(tg.Expr, func(v string) string {
					name := strings.TrimPrefix(v, "$")
					if d, ok := grafanaDuration[name]; ok {
						return d
					}
					if vars[name] {
						return ".*" // in a regex match: every value
					}
					return v // left for the parser to refuse
				})
				qs = append(qs, query{where: fmt.Sprintf("panel %q", p.Title), expr: expr})
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	return qs, nil
}

// metricNames parses each query and returns the metric names it selects, by where it stands.
func metricNames(qs []query) (map[string][]string, error) {
	names := map[string][]string{}
	for _, q := range qs {
		expr, err := promql.ParseExpr(q.expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", q.where, q.expr, err)
		}
		found := false
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				name := vs.Name
				if name == "" {
					for _, m := range vs.LabelMatchers {
						if m.Name == model.MetricNameLabel {
							name = m.Value
						}
					}
				}
				names[name] = append(names[name], q.where)
				found = true
			}
			return nil
		})
		if !found {
			return nil, fmt.Errorf("%s: %q selects no metric", q.where, q.expr)
		}
	}
	return names, nil
}

// operatorQueries are every query of deploy/'s alert rules and dashboard.
func operatorQueries(t *testing.T) []query {
	t.Helper()
	alerts, err := alertQueries(filepath.Join(deployDir(t), "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	panels, err := dashboardQueries(filepath.Join(deployDir(t), "grafana", "dashboards", "whistle.json"))
	if err != nil {
		t.Fatal(err)
	}
	return append(alerts, panels...)
}

// unexported returns the names in names that are neither in exported nor Prometheus's own,
// each with where it is used.
func unexported(names map[string][]string, exported map[string]bool) []string {
	var missing []string
	for name, where := range names {
		if !exported[name] && !slices.Contains(prometheusOwn, name) {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, strings.Join(slices.Compact(slices.Sorted(slices.Values(where))), ", ")))
		}
	}
	slices.Sort(missing)
	return missing
}

// notScrapedAlert is the alert that fires when Prometheus finds no replica of a process at all.
const notScrapedAlert = "alert WhistleServiceNotScraped"

// checkNotScraped checks that the alert on a process with no replica to scrape asks after each of
// processes: an absent(up{job="whistle", service=NAME}) for each, since absent() of a series
// that was never there is the one way to see a process that is gone entirely.
func checkNotScraped(qs []query) []error {
	i := slices.IndexFunc(qs, func(q query) bool { return q.where == notScrapedAlert })
	if i < 0 {
		return []error{fmt.Errorf("alerts.yaml has no %s", strings.TrimPrefix(notScrapedAlert, "alert "))}
	}
	expr, err := promql.ParseExpr(qs[i].expr)
	if err != nil {
		return []error{fmt.Errorf("%s: %w", notScrapedAlert, err)}
	}
	asked := map[string]bool{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		call, ok := n.(*parser.Call)
		if !ok || call.Func.Name != "absent" || len(call.Args) != 1 {
			return nil
		}
		vs, ok := call.Args[0].(*parser.VectorSelector)
		if !ok || vs.Name != "up" {
			return nil
		}
		job, service := "", ""
		for _, m := range vs.LabelMatchers {
			if m.Type != labels.MatchEqual {
				continue
			}
			switch m.Name {
			case "job":
				job = m.Value
			case "service":
				service = m.Value
			}
		}
		if job == "whistle" {
			asked[service] = true
		}
		return nil
	})
	var errs []error
	for _, name := range processes {
		if !asked[name] {
			errs = append(errs, fmt.Errorf(`%s does not fire when no replica of %s is scraped: no absent(up{job="whistle", service=%q})`, notScrapedAlert, name, name))
		}
	}
	return errs
}

func TestTheAlertRulesAndTheDashboardParse(t *testing.T) {
	t.Parallel()
	qs := operatorQueries(t)
	names, err := metricNames(qs)
	if err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, q := range qs {
		alerts[q.where] = true
	}
	for _, want := range []string{
		"alert WhistleConsumerFallingBehind", "alert WhistleEventsQuarantined",
		"alert WhistleBreachRecordedLate", "alert WhistleServiceWithoutReadyReplica",
	} {
		if !alerts[want] {
			t.Errorf("alerts.yaml has no %s", want)
		}
	}
	for _, err := range checkNotScraped(qs) {
		t.Error(err)
	}
	for _, want := range []string{
		"whistle_breaches_total", "whistle_breach_lateness_seconds_bucket", "whistle_consumer_lag",
		"whistle_events_quarantined_total", "rpc_server_call_duration_seconds_count", "whistle_ready",
	} {
		if len(names[want]) == 0 {
			t.Errorf("neither the alerts nor the dashboard read %s", want)
		}
	}
}

func TestABrokenRuleOrPanelIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, file, content, want string
	}{
		{"an expression that does not parse", "alerts.yaml",
			"groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum by (x (whistle_ready)\n", "parse error"},
		{"an unknown field", "alerts.yaml",
			"groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: whistle_ready == 0\n        for_: 5m\n", "for_"},
		{"a template that does not parse", "alerts.yaml",
			"groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: whistle_ready == 0\n        annotations:\n          summary: \"{{ $labels.service \"\n", "summary"},
		{"a panel on another datasource", "dash.json",
			`{"uid":"u","title":"t","panels":[{"title":"p","type":"timeseries","datasource":{"uid":"other"},"targets":[{"expr":"whistle_ready"}]}]}`, "does not query the datasource prometheus"},
		{"a panel whose query does not parse", "dash.json",
			`{"uid":"u","title":"t","panels":[{"title":"p","type":"timeseries","datasource":{"uid":"prometheus"},"targets":[{"expr":"rate(whistle_ready[$nope])"}]}]}`, "panel \"p\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+"-"+tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var qs []query
			var err error
			if strings.HasSuffix(tc.file, ".json") {
				qs, err = dashboardQueries(path)
			} else {
				qs, err = alertQueries(path)
			}
			if err == nil {
				_, err = metricNames(qs)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestAnAlertLeavingOutAProcessNeverScrapedIsFound(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyTree(t, filepath.Join(deployDir(t), "prometheus"), dir)
	edit{"alerts.yaml", `          or absent(up{job="whistle", service="gateway"})` + "\n", ""}.apply(t, dir)
	qs, err := alertQueries(filepath.Join(dir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := joinErrors(checkNotScraped(qs)); !strings.Contains(got, "no replica of gateway is scraped") {
		t.Errorf("the alert without the gateway gave %q, want the gateway named", got)
	}
}

func TestAMetricTheProgramDoesNotExportIsNamed(t *testing.T) {
	t.Parallel()
	names, err := metricNames([]query{
		{where: "alert A", expr: "whistle_ready == 0 or up == 0"},
		{where: "alert B", expr: "whistle_consumer_lag_total > 5"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := unexported(names, map[string]bool{"whistle_ready": true, "whistle_consumer_lag": true})
	if want := []string{"whistle_consumer_lag_total (alert B)"}; !slices.Equal(got, want) {
		t.Errorf("unexported = %q, want %q", got, want)
	}
}
