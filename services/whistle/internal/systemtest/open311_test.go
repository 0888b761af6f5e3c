package systemtest

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// open311Call makes one HTTP call to the Open311 interface of sys (Whistle's or a gateway's) and
// returns the status and body.
func open311Call(t *testing.T, sys interface{ HTTPAddr() string }, method, path string, form url.Values) (int, string) {
	t.Helper()
	return open311CallWith(t, sys, method, path, form, nil)
}

// open311CallWith is open311Call with the request's headers.
func open311CallWith(t *testing.T, sys interface{ HTTPAddr() string }, method, path string, form url.Values, header http.Header) (int, string) {
	t.Helper()
	u := "http://" + sys.HTTPAddr() + system.Open311Path + path
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// open311Request is the part of the specification's request this test reads.
type open311Request struct {
	ID                string `json:"service_request_id" xml:"service_request_id"`
	Token             string `json:"token" xml:"token"`
	Status            string `json:"status" xml:"status"`
	StatusNotes       string `json:"status_notes" xml:"status_notes"`
	ServiceCode       string `json:"service_code" xml:"service_code"`
	ServiceName       string `json:"service_name" xml:"service_name"`
	Description       string `json:"description" xml:"description"`
	AgencyResponsible string `json:"agency_responsible" xml:"agency_responsible"`
	ExpectedDatetime  string `json:"expected_datetime" xml:"expected_datetime"`
	RequestedDatetime string `json:"requested_datetime" xml:"requested_datetime"`
	Address           string `json:"address" xml:"address"`
	MediaURL          string `json:"media_url" xml:"media_url"`
}

func decodeRequests(t *testing.T, format, body string) []open311Request {
	t.Helper()
	var out []open311Request
	if format == "json" {
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		return out
	}
	var doc struct {
		Requests []open311Request `xml:"request"`
	}
	if err := xml.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return doc.Requests
}

func TestAnOpen311ClientPostsARequestThatBecomesAnIssueAndFollowsItInBothFormats(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	key, err := sys.Authority().Mint(authx.Principal{Subject: "hotline-12345", Role: authx.RoleIntegrator, Scope: authx.CityScope}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	if code, body := open311Call(t, sys, "GET", "discovery.json", nil); code != 200 || !strings.Contains(body, "http://wiki.open311.org/GeoReport_v2") {
		t.Errorf("discovery: %d %s", code, body)
	}
	if code, body := open311Call(t, sys, "GET", "services.xml", nil); code != 200 || !strings.Contains(body, "<service_code>blocked-drain</service_code>") {
		t.Errorf("services.xml: %d %s", code, body)
	}
	if code, body := open311Call(t, sys, "GET", "services/blocked-drain.json", nil); code != 200 || !strings.Contains(body, `"code":"urgency"`) {
		t.Errorf("the blocked drain's definition: %d %s", code, body)
	}
	if code, _ := open311Call(t, sys, "GET", "services/no-such-thing.json", nil); code != 404 {
		t.Errorf("an unknown service: %d, want 404", code)
	}

	post := url.Values{"api_key": {key}, "service_code": {"blocked-drain"}, "lat": {"22.7360"}, "long": {"110.3050"},
		"address_string": {"Taoyuan Road 3"}, "description": {"Drain overflowing by the school gate"},
		"email": {"resident@example.cn"}, "first_name": {"Li"}, "phone": {"13800000000"},
		"attribute[urgency]": {"urgent"}, "media_url": {"https://photos.example.cn/drain.jpg"}}
	code, body := open311Call(t, sys, "POST", "requests.json", post)
	if code != 200 {
		t.Fatalf("POST requests.json: %d %s", code, body)
	}
	receipt := decodeRequests(t, "json", body)
	if len(receipt) != 1 || receipt[0].ID == "" || receipt[0].Token == "" {
		t.Fatalf("the receipt %s names no request and no token", body)
	}
	id := receipt[0].ID

	// The stream records the integrator as the raiser, and the issue carries the resident's contact.
	supervisor := Dial(t, sys, Supervisor())
	is := waitForStatus(t, supervisor, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id]
	if is.GetChannel() != whistlev1.Channel_CHANNEL_OPEN311 || is.GetRaisedBy() != "hotline-12345" ||
		is.GetGridId() != "xinhua-taoyuan-01" || is.GetUrgency() != whistlev1.Urgency_URGENCY_URGENT ||
		is.GetContact().GetEmail() != "resident@example.cn" || is.GetMediaUrl() != "https://photos.example.cn/drain.jpg" {
		t.Errorf("the issue raised through Open311 is %v", is)
	}

	// The contact is for the city's staff and the integrator that gave it; another integrator and
	// a grid worker's raise cannot carry one.
	for _, c := range []struct {
		who  string
		p    authx.Principal
		sees bool
	}{
		{"the integrator that raised it", authx.Principal{Subject: "hotline-12345", Role: authx.RoleIntegrator, Scope: authx.CityScope}, true},
		{"another integrator", authx.Principal{Subject: "enterprise-window", Role: authx.RoleIntegrator, Scope: authx.CityScope}, false},
		{"the grid's worker", GridWorker("xinhua-taoyuan-01"), true},
	} {
		got, err := Dial(t, sys, c.p).Intake.GetIssue(t.Context(), &whistlev1.GetIssueRequest{Id: id})
		if err != nil || (got.GetIssue().GetContact().GetEmail() != "") != c.sees {
			t.Errorf("%s reads the contact %v (%v); want it shown: %v", c.who, got.GetIssue().GetContact(), err, c.sees)
		}
	}
	_, err = Dial(t, sys, GridWorker("xinhua-taoyuan-01")).Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
		CategoryId: "blocked-drain", GridId: "xinhua-taoyuan-01", Text: "x", Contact: &whistlev1.Contact{Email: "a@b.cn"}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "contact") {
		t.Errorf("a grid worker's raise with a contact: %v; want InvalidArgument naming contact", err)
	}
	if _, err := Dial(t, sys, authx.Principal{Subject: "hotline-12345", Role: authx.RoleIntegrator, Scope: authx.CityScope}).Escalation.ListBreaches(
		t.Context(), &whistlev1.ListBreachesRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("an integrator lists breaches: %v; want PermissionDenied", err)
	}

	for _, format := range []string{"json", "xml"} {
		code, body := open311Call(t, sys, "GET", "requests/"+id+"."+format, nil)
		if code != 200 {
			t.Fatalf("requests/%s.%s: %d %s", id, format, code, body)
		}
		got := decodeRequests(t, format, body)
		if len(got) != 1 {
			t.Fatalf("requests/%s.%s: %s", id, format, body)
		}
		r := got[0]
		if r.ID != id || r.Status != "open" || r.ServiceCode != "blocked-drain" || r.Description != "Drain overflowing by the school gate" ||
			r.AgencyResponsible == "" || r.ExpectedDatetime == "" || r.StatusNotes == "" || r.Address != "Taoyuan Road 3" ||
			!strings.HasSuffix(r.RequestedDatetime, "+08:00") {
			t.Errorf("requests/%s.%s = %+v", id, format, r)
		}
		if strings.Contains(body, "resident@example.cn") || strings.Contains(body, "13800000000") {
			t.Errorf("requests/%s.%s shows the resident's contact: %s", id, format, body)
		}
		code, body = open311Call(t, sys, "GET", "tokens/"+receipt[0].Token+"."+format, nil)
		if got := decodeRequests(t, format, body); code != 200 || len(got) != 1 || got[0].ID != id {
			t.Errorf("tokens/%s.%s: %d %s", receipt[0].Token, format, code, body)
		}
	}
	code, body = open311Call(t, sys, "GET", "requests.json?service_code=blocked-drain", nil)
	if got := decodeRequests(t, "json", body); code != 200 || len(got) != 1 || got[0].ID != id {
		t.Errorf("requests.json?service_code=blocked-drain: %d %s", code, body)
	}
	code, body = open311Call(t, sys, "GET", "requests.json?service_code=noise", nil)
	if got := decodeRequests(t, "json", body); code != 200 || len(got) != 0 {
		t.Errorf("requests.json?service_code=noise: %d %s", code, body)
	}
	if code, _ := open311Call(t, sys, "GET", "requests/K7M3-QX9A.json", nil); code != 404 {
		t.Errorf("a request that does not exist: %d, want 404", code)
	}
}

func TestOpen311RefusesABadRequestInTheSpecificationsFormatAndWritesNothing(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	key, err := sys.Authority().Mint(authx.Principal{Subject: "hotline-12345", Role: authx.RoleIntegrator, Scope: authx.CityScope}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	workerKey, err := sys.Authority().Mint(GridWorker("xinhua-taoyuan-01"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	valid := func(change func(url.Values)) url.Values {
		v := url.Values{"api_key": {key}, "service_code": {"blocked-drain"}, "lat": {"22.7360"}, "long": {"110.3050"},
			"description": {"Drain overflowing"}}
		change(v)
		return v
	}
	Settle(t, sys)
	before := StreamMessages(t, sys)
	for _, c := range []struct {
		name   string
		form   url.Values
		status int
		says   string
	}{
		{"no api_key", valid(func(v url.Values) { v.Del("api_key") }), 403, "api_key"},
		{"a key that is not one", valid(func(v url.Values) { v.Set("api_key", "nonsense") }), 403, "api_key"},
		{"a grid worker's token as a key", valid(func(v url.Values) { v.Set("api_key", workerKey) }), 403, "api_key"},
		{"a point in no grid", valid(func(v url.Values) { v.Set("lat", "22.7000"); v.Set("long", "110.4100") }), 400, "nearest is hexi-"},
		{"an unknown service", valid(func(v url.Values) { v.Set("service_code", "no-such-thing") }), 400, "service_code"},
		{"no description", valid(func(v url.Values) { v.Del("description") }), 400, "description"},
		{"an unknown attribute", valid(func(v url.Values) { v.Set("attribute[colour]", "red") }), 400, "colour"},
		{"an urgency that is none", valid(func(v url.Values) { v.Set("attribute[urgency]", "whenever") }), 400, "urgency"},
		{"an address naming no compound", valid(func(v url.Values) { v.Del("lat"); v.Del("long"); v.Set("address_string", "Taoyuan Road 3") }), 400, "address_string"},
		{"an address naming two compounds", valid(func(v url.Values) {
			v.Del("lat")
			v.Del("long")
			v.Set("address_string", "between Taoyuan Garden and Hebin Mansion")
		}), 400, "address_string"},
		{"no place at all", valid(func(v url.Values) { v.Del("lat"); v.Del("long") }), 400, "address_string"},
		{"a bad email", valid(func(v url.Values) { v.Set("email", "not an address") }), 400, "email"},
	} {
		for _, format := range []string{"json", "xml"} {
			code, body := open311Call(t, sys, "POST", "requests."+format, c.form)
			if code != c.status || !strings.Contains(body, c.says) {
				t.Errorf("%s (.%s): %d %s; want %d saying %q", c.name, format, code, body, c.status, c.says)
			}
			if format == "xml" && !strings.Contains(body, "<errors><error><code>") {
				t.Errorf("%s (.xml): %s is not the specification's error document", c.name, body)
			}
			if format == "json" && !strings.HasPrefix(body, `[{"code":`) {
				t.Errorf("%s (.json): %s is not the specification's error array", c.name, body)
			}
		}
	}
	Settle(t, sys)
	if after := StreamMessages(t, sys); after != before {
		t.Errorf("refused requests wrote %d events", after-before)
	}
}

func TestAnOpen311PostSentAgainWithItsIdempotencyKeyRaisesOnceAndTheKeyReusedIsRefused(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	key, err := sys.Authority().Mint(authx.Principal{Subject: "hotline-12345", Role: authx.RoleIntegrator, Scope: authx.CityScope}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	post := func(description, idempotencyKey string) (int, string) {
		t.Helper()
		return open311CallWith(t, sys, "POST", "requests.json", url.Values{"api_key": {key}, "service_code": {"blocked-drain"},
			"lat": {"22.7360"}, "long": {"110.3050"}, "description": {description}}, http.Header{"Idempotency-Key": {idempotencyKey}})
	}
	code, body := post("Drain overflowing by the school gate", "hotline-call-20261204-0042")
	if code != http.StatusOK {
		t.Fatalf("the first POST: %d %s", code, body)
	}
	first := decodeRequests(t, "json", body)[0].ID
	waitForStatus(t, Dial(t, sys, Supervisor()), []string{first}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	Settle(t, sys)
	before := StreamMessages(t, sys)

	// The answer was lost, so the hotline sends the same request again.
	code, body = post("Drain overflowing by the school gate", "hotline-call-20261204-0042")
	if code != http.StatusOK || decodeRequests(t, "json", body)[0].ID != first {
		t.Errorf("the POST sent again: %d %s; want the first receipt, %s", code, body, first)
	}
	for _, c := range []struct {
		name, description, key string
		status                 int
		says                   []string
	}{
		{"the key with another description", "Another drain entirely", "hotline-call-20261204-0042", http.StatusUnprocessableEntity,
			[]string{"Idempotency-Key", first, "description"}},
		{"a key with a space", "Drain overflowing by the school gate", "call 42", http.StatusBadRequest, []string{"Idempotency-Key"}},
		{"a key too long", "Drain overflowing by the school gate", strings.Repeat("k", 65), http.StatusBadRequest, []string{"Idempotency-Key"}},
	} {
		code, body := post(c.description, c.key)
		if code != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.status)
		}
		for _, word := range c.says {
			if !strings.Contains(body, word) {
				t.Errorf("%s: %s does not say %q", c.name, body, word)
			}
		}
	}
	Settle(t, sys)
	if after := StreamMessages(t, sys); after != before {
		t.Errorf("the stream grew from %d to %d messages: a POST sent again or refused wrote", before, after)
	}
}

func TestAnOpen311RequestWithAnAddressAloneIsPlacedInTheCompoundItNamesAndSaysSo(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	key, err := sys.Authority().Mint(authx.Principal{Subject: "hotline-12345", Role: authx.RoleIntegrator, Scope: authx.CityScope}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	code, body := open311Call(t, sys, "POST", "requests.xml", url.Values{"api_key": {key}, "service_code": {"blocked-drain"},
		"address_string": {"taoyuan garden, building 3"}, "description": {"Drain overflowing behind building 3"}})
	if code != http.StatusOK {
		t.Fatalf("POST with an address alone: %d %s", code, body)
	}
	id := decodeRequests(t, "xml", body)[0].ID
	is := waitForStatus(t, Dial(t, sys, Supervisor()), []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id]
	loc := is.GetLocation()
	if is.GetGridId() != "xinhua-taoyuan-01" || is.GetCompoundId() != "taoyuan-garden" || !loc.GetPlacedByAddress() ||
		loc.GetAddress() != "taoyuan garden, building 3" {
		t.Fatalf("the issue placed by its address is %v", is)
	}
	// The point recorded stands for the compound, and lies in it.
	grid, compound, err := sys.Deps().Catalog.Locate(loc.GetLatitude(), loc.GetLongitude())
	if err != nil || grid != "xinhua-taoyuan-01" || compound != "taoyuan-garden" {
		t.Errorf("the recorded point %v lies in %s, %s (%v), not in the garden", loc, grid, compound, err)
	}
	if code, body := open311Call(t, sys, "GET", "requests/"+id+".json", nil); code != http.StatusOK || !strings.Contains(body, `"address":"taoyuan garden, building 3"`) {
		t.Errorf("GET requests/%s.json: %d %s", id, code, body)
	}

	// A raise asks for the address to place it, or gives its point: not both.
	_, err = Dial(t, sys, GridWorker("xinhua-taoyuan-01")).Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
		CategoryId: "blocked-drain", Text: "Drain overflowing", Location: &whistlev1.Location{
			Latitude: 22.7350, Longitude: 110.3020, Address: "Taoyuan Garden", PlacedByAddress: true}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "location.placed_by_address") {
		t.Errorf("a raise with a point and placed_by_address: %v; want InvalidArgument naming location.placed_by_address", err)
	}
}
