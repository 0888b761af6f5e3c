package open311

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend is an in-memory Backend that records what the handler hands it.
type fakeBackend struct {
	keys     map[string]string // api_key → integrator
	services []Service
	defs     map[string]Definition
	reqs     map[string]Request
	list     []Request
	tokens   map[string]string // token → service_request_id
	receipt  Receipt
	err      error // when set, every method but Integrator answers it

	mu         sync.Mutex
	raised     []NewRequest
	raisedKeys []string
	queries    []Query
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		keys:    map[string]string{"xyz": "acme", "xyz2": "acme", "other": "beta"},
		defs:    map[string]Definition{},
		reqs:    map[string]Request{},
		tokens:  map[string]string{},
		receipt: Receipt{ServiceRequestID: "293944", ServiceNotice: "The City will inspect within 24 hours."},
	}
}

func (b *fakeBackend) Integrator(_ context.Context, apiKey string) (string, error) {
	if name, ok := b.keys[apiKey]; ok {
		return name, nil
	}
	return "", ErrForbidden
}

func (b *fakeBackend) Services(context.Context) ([]Service, error) {
	return b.services, b.err
}

func (b *fakeBackend) Definition(_ context.Context, code string) (Definition, error) {
	if b.err != nil {
		return Definition{}, b.err
	}
	d, ok := b.defs[code]
	if !ok {
		return Definition{}, fmt.Errorf("%w: no service %s", ErrNotFound, code)
	}
	return d, nil
}

func (b *fakeBackend) Raise(_ context.Context, apiKey string, r NewRequest) (Receipt, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.raised = append(b.raised, r)
	b.raisedKeys = append(b.raisedKeys, apiKey)
	return b.receipt, b.err
}

func (b *fakeBackend) Request(_ context.Context, id string) (Request, error) {
	if b.err != nil {
		return Request{}, b.err
	}
	r, ok := b.reqs[id]
	if !ok {
		return Request{}, fmt.Errorf("%w: no service request %s", ErrNotFound, id)
	}
	return r, nil
}

func (b *fakeBackend) Requests(_ context.Context, q Query) ([]Request, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queries = append(b.queries, q)
	return b.list, b.err
}

func (b *fakeBackend) Token(_ context.Context, token string) (string, error) {
	if b.err != nil {
		return "", b.err
	}
	id, ok := b.tokens[token]
	if !ok {
		return "", fmt.Errorf("%w: no token %s", ErrNotFound, token)
	}
	return id, nil
}

func (b *fakeBackend) raisedRequests() []NewRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.raised)
}

func (b *fakeBackend) seenQueries() []Query {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.queries)
}

var (
	testNow  = time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC)
	cityZone = time.FixedZone("CST", 8*60*60)
)

func testOptions() Options {
	return Options{
		Jurisdiction: "city.gov",
		Contact:      "311@city.gov",
		KeyService:   "Ask for a key at https://city.gov/keys",
		Location:     cityZone,
		Now:          func() time.Time { return testNow },
	}
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func get(target string) *http.Request {
	return httptest.NewRequest(http.MethodGet, target, nil)
}

func postForm(target, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	return r
}

func postMultipart(t *testing.T, target string, form url.Values) *http.Request {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range form[name] {
			if err := mw.WriteField(name, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, target, &body)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	return r
}

const (
	jsonType = "application/json; charset=utf-8"
	xmlType  = "text/xml; charset=utf-8"
	xmlHead  = `<?xml version="1.0" encoding="utf-8"?>` + "\n"
)

// expect checks an answer's status, Content-Type and exact body.
func expect(t *testing.T, w *httptest.ResponseRecorder, status int, contentType, body string) {
	t.Helper()
	if w.Code != status {
		t.Errorf("status = %d, want %d (body %s)", w.Code, status, w.Body)
	}
	if got := w.Header().Get("Content-Type"); got != contentType {
		t.Errorf("Content-Type = %q, want %q", got, contentType)
	}
	if got := w.Body.String(); got != body {
		t.Errorf("body =\n%s\nwant\n%s", got, body)
	}
}

// jsonErrors is the JSON error body with one error a description.
func jsonErrors(t *testing.T, code int, descriptions ...string) string {
	t.Helper()
	type wireError struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	}
	var list []wireError
	for _, d := range descriptions {
		list = append(list, wireError{code, d})
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestDiscoveryIsWrittenInBothFormats(t *testing.T) {
	t.Parallel()
	const jsonTail = `","changeset":"2026-12-04T09:30:00Z","type":"production","formats":["text/xml","application/json"]}]}` + "\n"
	const jsonHead = `{"changeset":"2026-12-04T09:30:00Z","contact":"311@city.gov","key_service":"Ask for a key at https://city.gov/keys",` +
		`"endpoints":[{"specification":"http://wiki.open311.org/GeoReport_v2","url":"`
	tests := []struct {
		name        string
		request     func() *http.Request
		contentType string
		want        string
	}{
		{
			name:        "JSON over plain http names an http endpoint",
			request:     func() *http.Request { return get("http://city.example/open311/v2/discovery.json") },
			contentType: jsonType,
			want:        jsonHead + "http://city.example/open311/v2/" + jsonTail,
		},
		{
			name: "JSON behind a proxy that ended TLS names an https endpoint",
			request: func() *http.Request {
				r := get("http://city.example/open311/v2/discovery.json")
				r.Header.Set("X-Forwarded-Proto", "https")
				return r
			},
			contentType: jsonType,
			want:        jsonHead + "https://city.example/open311/v2/" + jsonTail,
		},
		{
			name:        "XML over TLS names an https endpoint",
			request:     func() *http.Request { return get("https://city.example:8443/open311/v2/discovery.xml") },
			contentType: xmlType,
			want: xmlHead + `<discovery><changeset>2026-12-04T09:30:00Z</changeset><contact>311@city.gov</contact>` +
				`<key_service>Ask for a key at https://city.gov/keys</key_service><endpoints><endpoint>` +
				`<specification>http://wiki.open311.org/GeoReport_v2</specification><url>https://city.example:8443/open311/v2/</url>` +
				`<changeset>2026-12-04T09:30:00Z</changeset><type>production</type>` +
				`<formats><format>text/xml</format><format>application/json</format></formats></endpoint></endpoints></discovery>` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewHandler(newFakeBackend(), testOptions())
			expect(t, serve(h, tt.request()), http.StatusOK, tt.contentType, tt.want)
		})
	}
}

func TestServicesAreWrittenInBothFormats(t *testing.T) {
	t.Parallel()
	b := newFakeBackend()
	b.services = []Service{
		{Code: "001", Name: "Cans left out 24x7", Description: "Cans left out after collection.", Metadata: true,
			Type: "realtime", Keywords: []string{"lorem", "ipsum", "dolor"}, Group: "sanitation"},
		{Code: "002", Name: "Plate shifted", Type: "batch"},
	}
	tests := []struct {
		path, contentType, want string
	}{
		{
			"/open311/v2/services.json", jsonType,
			`[{"service_code":"001","service_name":"Cans left out 24x7","description":"Cans left out after collection.",` +
				`"metadata":true,"type":"realtime","keywords":"lorem, ipsum, dolor","group":"sanitation"},` +
				`{"service_code":"002","service_name":"Plate shifted","description":"","metadata":false,"type":"batch","keywords":"","group":""}]` + "\n",
		},
		{
			"/open311/v2/services.xml", xmlType,
			xmlHead + `<services><service><service_code>001</service_code><service_name>Cans left out 24x7</service_name>` +
				`<description>Cans left out after collection.</description><metadata>true</metadata><type>realtime</type>` +
				`<keywords>lorem, ipsum, dolor</keywords><group>sanitation</group></service>` +
				`<service><service_code>002</service_code><service_name>Plate shifted</service_name><description></description>` +
				`<metadata>false</metadata><type>batch</type><keywords></keywords><group></group></service></services>` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			h := NewHandler(b, testOptions())
			expect(t, serve(h, get(tt.path)), http.StatusOK, tt.contentType, tt.want)
		})
	}
}

func TestAnEmptyServiceListIsAnEmptyArray(t *testing.T) {
	t.Parallel()
	h := NewHandler(newFakeBackend(), testOptions())
	expect(t, serve(h, get("/open311/v2/services.json")), http.StatusOK, jsonType, "[]\n")
	expect(t, serve(h, get("/open311/v2/services.xml")), http.StatusOK, xmlType, xmlHead+"<services></services>\n")
}

func TestADefinitionIsWrittenInBothFormats(t *testing.T) {
	t.Parallel()
	b := newFakeBackend()
	b.defs["DMV66"] = Definition{Code: "DMV66", Attributes: []Attribute{{
		Variable: true, Code: "WHISHETN", Datatype: "singlevaluelist", Required: true, Order: 1,
		Description: "What is the ticket/tag/DL number?",
		Values:      []AttributeValue{{Key: "123", Name: "Ford"}, {Key: "124", Name: "Chrysler"}},
	}}}
	tests := []struct {
		path, contentType, want string
	}{
		{
			"/open311/v2/services/DMV66.json", jsonType,
			`{"service_code":"DMV66","attributes":[{"variable":true,"code":"WHISHETN","datatype":"singlevaluelist",` +
				`"required":true,"datatype_description":"","order":1,"description":"What is the ticket/tag/DL number?",` +
				`"values":[{"key":"123","name":"Ford"},{"key":"124","name":"Chrysler"}]}]}` + "\n",
		},
		{
			"/open311/v2/services/DMV66.xml", xmlType,
			xmlHead + `<service_definition><service_code>DMV66</service_code><attributes><attribute>` +
				`<variable>true</variable><code>WHISHETN</code><datatype>singlevaluelist</datatype><required>true</required>` +
				`<datatype_description></datatype_description><order>1</order><description>What is the ticket/tag/DL number?</description>` +
				`<values><value><key>123</key><name>Ford</name></value><value><key>124</key><name>Chrysler</name></value></values>` +
				`</attribute></attributes></service_definition>` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			h := NewHandler(b, testOptions())
			expect(t, serve(h, get(tt.path)), http.StatusOK, tt.contentType, tt.want)
		})
	}
}

// specExample is the POST of the specification's example, with a multivaluelist attribute.
const specExample = "api_key=xyz&jurisdiction_id=city.gov&service_code=001&lat=37.76524078&long=-122.4212043" +
	"&address_string=1234+5th+street&email=smit333%40sfgov.edu&device_id=tt222111&account_id=123456" +
	"&first_name=john&last_name=smith&phone=111111111&description=A+large+sinkhole+is+destroying+the+street" +
	"&media_url=http%3A%2F%2Ffarm3.static.flickr.com%2F2002%2F2212426634_5ed477a060.jpg" +
	"&attribute[WHISPAWN]=123456&attribute[WHISDORN]=COISL001" +
	"&attribute[WHISCOLR][]=red&attribute%5BWHISCOLR%5D%5B%5D=blue"

var specExampleRequest = NewRequest{
	ServiceCode:   "001",
	Lat:           37.76524078,
	Long:          -122.4212043,
	HasPoint:      true,
	AddressString: "1234 5th street",
	Email:         "smit333@sfgov.edu",
	DeviceID:      "tt222111",
	AccountID:     "123456",
	FirstName:     "john",
	LastName:      "smith",
	Phone:         "111111111",
	Description:   "A large sinkhole is destroying the street",
	MediaURL:      "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
	Attributes: map[string][]string{
		"WHISPAWN": {"123456"},
		"WHISDORN": {"COISL001"},
		"WHISCOLR": {"red", "blue"},
	},
}

func specExampleForm(t *testing.T) url.Values {
	t.Helper()
	form, err := url.ParseQuery(specExample)
	if err != nil {
		t.Fatal(err)
	}
	return form
}

func TestPostingTheSpecExampleAnswersAReceipt(t *testing.T) {
	t.Parallel()
	const (
		jsonReceipt = `[{"service_request_id":"293944","service_notice":"The City will inspect within 24 hours.","account_id":""}]` + "\n"
		xmlReceipt  = xmlHead + `<service_requests><request><service_request_id>293944</service_request_id>` +
			`<service_notice>The City will inspect within 24 hours.</service_notice><account_id></account_id></request></service_requests>` + "\n"
	)
	tests := []struct {
		name        string
		request     func(t *testing.T) *http.Request
		contentType string
		want        string
	}{
		{"a url-encoded form answers JSON", func(*testing.T) *http.Request {
			return postForm("/open311/v2/requests.json", specExample)
		}, jsonType, jsonReceipt},
		{"a url-encoded form answers XML", func(*testing.T) *http.Request {
			return postForm("/open311/v2/requests.xml", specExample)
		}, xmlType, xmlReceipt},
		{"a multipart form answers JSON", func(t *testing.T) *http.Request {
			return postMultipart(t, "/open311/v2/requests.json", specExampleForm(t))
		}, jsonType, jsonReceipt},
		{"a multipart form answers XML", func(t *testing.T) *http.Request {
			return postMultipart(t, "/open311/v2/requests.xml", specExampleForm(t))
		}, xmlType, xmlReceipt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newFakeBackend()
			h := NewHandler(b, testOptions())
			expect(t, serve(h, tt.request(t)), http.StatusOK, tt.contentType, tt.want)
			raised := b.raisedRequests()
			if len(raised) != 1 {
				t.Fatalf("Raise was called %d times, want once", len(raised))
			}
			if !reflect.DeepEqual(raised[0], specExampleRequest) {
				t.Errorf("Raise got\n%+v\nwant\n%+v", raised[0], specExampleRequest)
			}
			if b.raisedKeys[0] != "xyz" {
				t.Errorf("Raise got api_key %q, want xyz", b.raisedKeys[0])
			}
		})
	}
}

func TestAReceiptWithATokenLeavesOutTheServiceRequestID(t *testing.T) {
	t.Parallel()
	b := newFakeBackend()
	b.receipt = Receipt{Token: "12345", AccountID: "a-7"}
	h := NewHandler(b, testOptions())
	expect(t, serve(h, postForm("/open311/v2/requests.json", specExample)), http.StatusOK, jsonType,
		`[{"token":"12345","service_notice":"","account_id":"a-7"}]`+"\n")
}

func TestAPostNeedsOnlyAServiceCodeAndAPlace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want NewRequest
	}{
		{"an address_string is a place", "api_key=xyz&service_code=001&address_string=Main+St",
			NewRequest{ServiceCode: "001", AddressString: "Main St"}},
		{"an address_id is a place", "api_key=xyz&service_code=001&address_id=545483",
			NewRequest{ServiceCode: "001", AddressID: "545483"}},
		{"the corners of the map are places", "api_key=xyz&service_code=001&lat=-90&long=180",
			NewRequest{ServiceCode: "001", Lat: -90, Long: 180, HasPoint: true}},
		{"empty optional fields count as not given", "api_key=xyz&service_code=001&address_id=7&lat=&long=&email=&attribute[X]=",
			NewRequest{ServiceCode: "001", AddressID: "7"}},
		{"attribute[code] and attribute[code][] join in one order", "api_key=xyz&service_code=001&address_id=7&attribute[X][]=b&attribute[X]=a&attribute[X][]=c",
			NewRequest{ServiceCode: "001", AddressID: "7", Attributes: map[string][]string{"X": {"a", "b", "c"}}}},
		{"a description of exactly the limit in characters, not bytes, is accepted",
			"api_key=xyz&service_code=001&address_id=7&description=" + strings.Repeat("%C3%A9", MaxDescriptionLen),
			NewRequest{ServiceCode: "001", AddressID: "7", Description: strings.Repeat("é", MaxDescriptionLen)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newFakeBackend()
			h := NewHandler(b, testOptions())
			w := serve(h, postForm("/open311/v2/requests.json", tt.body))
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200 (body %s)", w.Code, w.Body)
			}
			if raised := b.raisedRequests(); len(raised) != 1 || !reflect.DeepEqual(raised[0], tt.want) {
				t.Errorf("Raise got %+v, want [%+v]", raised, tt.want)
			}
		})
	}
}

func TestEachInvalidFieldIsRefusedNamingIt(t *testing.T) {
	t.Parallel()
	set := func(name, value string) func(url.Values) {
		return func(v url.Values) { v.Set(name, value) }
	}
	del := func(names ...string) func(url.Values) {
		return func(v url.Values) {
			for _, n := range names {
				v.Del(n)
			}
		}
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name   string
		change func(url.Values)
		want   []string
	}{
		{"a missing service_code", del("service_code"), []string{"service_code is required"}},
		{"a blank service_code", set("service_code", "  "), []string{"service_code is required"}},
		{"a service_code too long", set("service_code", long(MaxCodeLen+1)), []string{"service_code is longer than 64 characters"}},
		{"lat without long", del("long"), []string{"long is required when lat is given"}},
		{"long without lat", del("lat"), []string{"lat is required when long is given"}},
		{"a lat that is not a number", set("lat", "north"), []string{"lat must be a number between -90 and 90"}},
		{"a lat that is NaN", set("lat", "NaN"), []string{"lat must be a number between -90 and 90"}},
		{"a lat beyond the pole", set("lat", "90.0001"), []string{"lat must be a number between -90 and 90"}},
		{"a long that is infinite", set("long", "+Inf"), []string{"long must be a number between -180 and 180"}},
		{"a long beyond the antimeridian", set("long", "-180.5"), []string{"long must be a number between -180 and 180"}},
		{"no place at all", del("lat", "long", "address_string"),
			[]string{"a location is required: lat and long, address_string or address_id"}},
		{"a description one character too long", set("description", strings.Repeat("é", MaxDescriptionLen+1)),
			[]string{"description is longer than 2000 characters"}},
		{"a description that is not UTF-8", set("description", "sinkhole \xff"), []string{"description is not valid UTF-8"}},
		{"a first_name with a control character", set("first_name", "jo\x00hn"), []string{"first_name must not contain control characters"}},
		{"a first_name too long", set("first_name", long(MaxNameLen+1)), []string{"first_name is longer than 100 characters"}},
		{"a last_name too long", set("last_name", long(MaxNameLen+1)), []string{"last_name is longer than 100 characters"}},
		{"an email too long", set("email", long(MaxEmailLen+1)), []string{"email is longer than 254 characters"}},
		{"a phone too long", set("phone", long(MaxPhoneLen+1)), []string{"phone is longer than 32 characters"}},
		{"a device_id too long", set("device_id", long(MaxDeviceIDLen+1)), []string{"device_id is longer than 128 characters"}},
		{"an account_id too long", set("account_id", long(MaxAccountIDLen+1)), []string{"account_id is longer than 128 characters"}},
		{"an address_string too long", set("address_string", long(MaxAddressStringLen+1)),
			[]string{"address_string is longer than 500 characters"}},
		{"an address_id too long", set("address_id", long(MaxAddressIDLen+1)), []string{"address_id is longer than 128 characters"}},
		{"a media_url too long", set("media_url", "http://city.gov/"+long(MaxMediaURLLen)),
			[]string{"media_url is longer than 2048 characters"}},
		{"a media_url of another scheme", set("media_url", "ftp://city.gov/a.jpg"),
			[]string{"media_url must be an absolute http or https URL"}},
		{"a relative media_url", set("media_url", "/a.jpg"), []string{"media_url must be an absolute http or https URL"}},
		{"a media_url without a host", set("media_url", "http:///a.jpg"), []string{"media_url must be an absolute http or https URL"}},
		{"an attribute without its closing bracket", set("attribute[WHISPAWN", "1"),
			[]string{`attribute parameter "attribute[WHISPAWN" must be attribute[code] or attribute[code][]`}},
		{"an attribute without a code", set("attribute[]", "1"),
			[]string{`attribute parameter "attribute[]" must be attribute[code] or attribute[code][]`}},
		{"an attribute with an index", set("attribute[X][0]", "1"),
			[]string{`attribute parameter "attribute[X][0]" must be attribute[code] or attribute[code][]`}},
		{"an attribute value too long", set("attribute[WHISPAWN]", long(MaxAttributeValueLen+1)),
			[]string{"attribute[WHISPAWN] is longer than 500 characters"}},
		{"several problems at once", func(v url.Values) { v.Del("service_code"); v.Set("lat", "north") },
			[]string{"service_code is required", "lat must be a number between -90 and 90"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			form := specExampleForm(t)
			tt.change(form)
			b := newFakeBackend()
			h := NewHandler(b, testOptions())
			w := serve(h, postForm("/open311/v2/requests.json", form.Encode()))
			expect(t, w, http.StatusBadRequest, jsonType, jsonErrors(t, http.StatusBadRequest, tt.want...))
			if raised := b.raisedRequests(); len(raised) != 0 {
				t.Errorf("Raise was called with %+v", raised)
			}
		})
	}
}

func TestAnInvalidFieldIsRefusedInXMLToo(t *testing.T) {
	t.Parallel()
	b := newFakeBackend()
	h := NewHandler(b, testOptions())
	w := serve(h, postForm("/open311/v2/requests.xml", "api_key=xyz&address_id=7"))
	expect(t, w, http.StatusBadRequest, xmlType,
		xmlHead+`<errors><error><code>400</code><description>service_code is required</description></error></errors>`+"\n")
	if len(b.raisedRequests()) != 0 {
		t.Error("Raise was called")
	}
}

func TestABodyTooLargeIsRefused(t *testing.T) {
	t.Parallel()
	big := specExample + "&description=" + strings.Repeat("a", MaxBodyBytes)
	tests := []struct {
		name    string
		request func(t *testing.T) *http.Request
	}{
		{"a form with its length announced", func(*testing.T) *http.Request {
			return postForm("/open311/v2/requests.json", big)
		}},
		{"a form streamed without a length", func(*testing.T) *http.Request {
			r := postForm("/open311/v2/requests.json", big)
			r.ContentLength = -1
			return r
		}},
		{"a multipart form streamed without a length", func(t *testing.T) *http.Request {
			form := specExampleForm(t)
			form.Set("description", strings.Repeat("a", MaxBodyBytes))
			r := postMultipart(t, "/open311/v2/requests.json", form)
			r.ContentLength = -1
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newFakeBackend()
			h := NewHandler(b, testOptions())
			expect(t, serve(h, tt.request(t)), http.StatusRequestEntityTooLarge, jsonType,
				`[{"code":413,"description":"the request body is larger than 65536 bytes"}]`+"\n")
			if len(b.raisedRequests()) != 0 {
				t.Error("Raise was called")
			}
		})
	}
}

func TestABodyOfAnotherContentTypeIsRefused(t *testing.T) {
	t.Parallel()
	b := newFakeBackend()
	h := NewHandler(b, testOptions())
	r := httptest.NewRequest(http.MethodPost, "/open311/v2/requests.json?api_key=xyz", strings.NewReader(`{"service_code":"001"}`))
	r.Header.Set("Content-Type", "application/json")
	expect(t, serve(h, r), http.StatusBadRequest, jsonType,
		jsonErrors(t, 400, "Content-Type must be application/x-www-form-urlencoded or multipart/form-data"))
	if len(b.raisedRequests()) != 0 {
		t.Error("Raise was called")
	}
}

func TestTheAPIKeyIsChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		request     func() *http.Request
		status      int
		contentType string
		want        string
	}{
		{"a POST without api_key is forbidden", func() *http.Request {
			return postForm("/open311/v2/requests.json", "service_code=001&address_id=7")
		}, 403, jsonType, `[{"code":403,"description":"api_key is required"}]` + "\n"},
		{"a POST with an empty api_key is forbidden", func() *http.Request {
			return postForm("/open311/v2/requests.xml", "api_key=&service_code=001&address_id=7")
		}, 403, xmlType, xmlHead + `<errors><error><code>403</code><description>api_key is required</description></error></errors>` + "\n"},
		{"a POST with a wrong api_key is forbidden", func() *http.Request {
			return postForm("/open311/v2/requests.json", "api_key=nope&service_code=001&address_id=7")
		}, 403, jsonType, `[{"code":403,"description":"invalid api_key"}]` + "\n"},
		{"a GET with a wrong api_key is forbidden", func() *http.Request {
			return get("/open311/v2/services.xml?api_key=nope")
		}, 403, xmlType, xmlHead + `<errors><error><code>403</code><description>invalid api_key</description></error></errors>` + "\n"},
		{"a GET with a good api_key is answered", func() *http.Request {
			return get("/open311/v2/services.json?api_key=xyz")
		}, 200, jsonType, "[]\n"},
		{"a GET without api_key is answered", func() *http.Request {
			return get("/open311/v2/services.json")
		}, 200, jsonType, "[]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newFakeBackend()
			h := NewHandler(b, testOptions())
			expect(t, serve(h, tt.request()), tt.status, tt.contentType, tt.want)
			if len(b.raisedRequests()) != 0 {
				t.Error("Raise was called")
			}
		})
	}
}

func TestUnknownThingsAreNotFoundInTheAskedFormat(t *testing.T) {
	t.Parallel()
	xmlError := func(description string) string {
		return xmlHead + `<errors><error><code>404</code><description>` + description + `</description></error></errors>` + "\n"
	}
	tests := []struct {
		path, contentType, want string
	}{
		{"/open311/v2/requests/999.json", jsonType, `[{"code":404,"description":"not found: no service request 999"}]` + "\n"},
		{"/open311/v2/requests/999.xml", xmlType, xmlError("not found: no service request 999")},
		{"/open311/v2/services/nope.json", jsonType, `[{"code":404,"description":"not found: no service nope"}]` + "\n"},
		{"/open311/v2/services/nope.xml", xmlType, xmlError("not found: no service nope")},
		{"/open311/v2/tokens/t-1.json", jsonType, `[{"code":404,"description":"not found: no token t-1"}]` + "\n"},
		{"/open311/v2/tokens/t-1.xml", xmlType, xmlError("not found: no token t-1")},
		{"/open311/v2/services.json?jurisdiction_id=other.gov", jsonType, `[{"code":404,"description":"unknown jurisdiction_id"}]` + "\n"},
		{"/open311/v2/requests.xml?jurisdiction_id=other.gov", xmlType, xmlError("unknown jurisdiction_id")},
		{"/open311/v2/nothing.xml", xmlType, xmlError("not found: /open311/v2/nothing.xml")},
		{"/open311/v2/tokens.json", jsonType, `[{"code":404,"description":"not found: /open311/v2/tokens.json"}]` + "\n"},
		{"/open311/v2/requests/1/2.json", jsonType, `[{"code":404,"description":"not found: /open311/v2/requests/1/2.json"}]` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			h := NewHandler(newFakeBackend(), testOptions())
			expect(t, serve(h, get(tt.path)), http.StatusNotFound, tt.contentType, tt.want)
		})
	}
}

func TestTheRightJurisdictionIsAccepted(t *testing.T) {
	t.Parallel()
	h := NewHandler(newFakeBackend(), testOptions())
	expect(t, serve(h, get("/open311/v2/services.json?jurisdiction_id=city.gov")), http.StatusOK, jsonType, "[]\n")
}

func TestAnEndpointOfOneCityTakesAnyJurisdiction(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.Jurisdiction = ""
	h := NewHandler(newFakeBackend(), opts)
	expect(t, serve(h, get("/open311/v2/services.json?jurisdiction_id=lianhua.gov.cn")), http.StatusOK, jsonType, "[]\n")
}

func TestAnUnknownFormatIsNotFoundInJSON(t *testing.T) {
	t.Parallel()
	const want = `[{"code":404,"description":"not found: paths end in .json or .xml"}]` + "\n"
	for _, path := range []string{
		"/open311/v2/services.html",
		"/open311/v2/services",
		"/open311/v2/services.JSON",
		"/open311/v2/requests/1.yaml",
		"/open311/v2/requests.json/",
		"/open311/v2/",
		"/open311/v1/services.xml",
	} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			h := NewHandler(newFakeBackend(), testOptions())
			expect(t, serve(h, get(path)), http.StatusNotFound, jsonType, want)
		})
	}
}

func TestAWrongMethodIsNotAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path, allow, contentType, want string
	}{
		{http.MethodDelete, "/open311/v2/requests.json", "GET, HEAD, POST", jsonType,
			`[{"code":405,"description":"method DELETE is not allowed here"}]` + "\n"},
		{http.MethodPost, "/open311/v2/services.xml", "GET, HEAD", xmlType,
			xmlHead + `<errors><error><code>405</code><description>method POST is not allowed here</description></error></errors>` + "\n"},
		{http.MethodPut, "/open311/v2/requests/1.json", "GET, HEAD", jsonType,
			`[{"code":405,"description":"method PUT is not allowed here"}]` + "\n"},
		{http.MethodPost, "/open311/v2/discovery.json", "GET, HEAD", jsonType,
			`[{"code":405,"description":"method POST is not allowed here"}]` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			b := newFakeBackend()
			h := NewHandler(b, testOptions())
			w := serve(h, httptest.NewRequest(tt.method, tt.path, nil))
			expect(t, w, http.StatusMethodNotAllowed, tt.contentType, tt.want)
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestBackendErrorsAreAnsweredWithTheirStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"an invalid request", fmt.Errorf("%w: the place is in no grid", ErrInvalid), 400, "invalid request: the place is in no grid"},
		{"a forbidden call", fmt.Errorf("%w: key revoked", ErrForbidden), 403, "invalid api_key: key revoked"},
		{"a missing thing", fmt.Errorf("%w: no such category", ErrNotFound), 404, "not found: no such category"},
		{"a throttled call", fmt.Errorf("%w: the catalog is busy", ErrRateLimit), 429, "too many requests: the catalog is busy"},
		{"a failure of Whistle", errors.New("catalog: dial tcp 10.0.0.3:9090: connection refused"), 500, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newFakeBackend()
			b.err = tt.err
			var logs bytes.Buffer
			opts := testOptions()
			opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			h := NewHandler(b, opts)
			expect(t, serve(h, get("/open311/v2/services.json")), tt.status, jsonType, jsonErrors(t, tt.status, tt.want))
			logged := strings.Contains(logs.String(), "connection refused")
			if wantLogged := tt.status == 500; logged != wantLogged {
				t.Errorf("the error was logged: %v, want %v; log:\n%s", logged, wantLogged, logs.String())
			}
		})
	}
}

func TestARaiseRefusedByTheBackendIsAnswered(t *testing.T) {
	t.Parallel()
	b := newFakeBackend()
	b.err = fmt.Errorf("%w: attribute[WHISPAWN] is required", ErrInvalid)
	h := NewHandler(b, testOptions())
	expect(t, serve(h, postForm("/open311/v2/requests.xml", specExample)), http.StatusBadRequest, xmlType,
		xmlHead+`<errors><error><code>400</code><description>invalid request: attribute[WHISPAWN] is required</description></error></errors>`+"\n")
}

func TestTheRateLimitAnswers429OnceTheBurstIsSpent(t *testing.T) {
	t.Parallel()
	const throttled = `[{"code":429,"description":"too many requests: retry after 1s"}]` + "\n"
	from := func(r *http.Request, addr string) *http.Request {
		r.RemoteAddr = addr
		return r
	}
	tests := []struct {
		name string
		// call is the i-th call of the burst; all of them share one bucket.
		call  func(i int) *http.Request
		burst int
		// other is a call that must not share the bucket.
		other *http.Request
		// otherStatus is what other is answered.
		otherStatus int
	}{
		{
			name:        "anonymous calls are limited by address",
			call:        func(int) *http.Request { return from(get("/open311/v2/services.json"), "198.51.100.7:5000") },
			burst:       AnonymousBurst,
			other:       from(get("/open311/v2/services.json"), "198.51.100.8:5000"),
			otherStatus: http.StatusOK,
		},
		{
			name: "anonymous calls ignore X-Forwarded-For",
			call: func(i int) *http.Request {
				r := from(get("/open311/v2/services.json"), "198.51.100.7:5000")
				r.Header.Set("X-Forwarded-For", "203.0.113."+strconv.Itoa(i))
				return r
			},
			burst:       AnonymousBurst,
			other:       from(get("/open311/v2/services.json"), "198.51.100.8:5000"),
			otherStatus: http.StatusOK,
		},
		{
			name: "anonymous calls from one IPv6 /64 share a bucket",
			call: func(i int) *http.Request {
				return from(get("/open311/v2/services.json"), fmt.Sprintf("[2001:db8::%x]:5000", i+1))
			},
			burst:       AnonymousBurst,
			other:       from(get("/open311/v2/services.json"), "[2001:db8:0:1::1]:5000"),
			otherStatus: http.StatusOK,
		},
		{
			name: "calls with a key are limited by integrator, whatever the key and address",
			call: func(i int) *http.Request {
				key := []string{"xyz", "xyz2"}[i%2]
				return from(get("/open311/v2/services.json?api_key="+key), "198.51.100."+strconv.Itoa(i)+":5000")
			},
			burst:       KeyBurst,
			other:       from(get("/open311/v2/services.json?api_key=other"), "198.51.100.1:5000"),
			otherStatus: http.StatusOK,
		},
		{
			name: "calls with a wrong key are charged to their address",
			call: func(int) *http.Request {
				return from(get("/open311/v2/services.json?api_key=guess"), "198.51.100.9:5000")
			},
			burst:       AnonymousBurst,
			other:       from(get("/open311/v2/services.json?api_key=guess"), "198.51.100.10:5000"),
			otherStatus: http.StatusForbidden,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Now stands still, so no token comes back during the test.
			h := NewHandler(newFakeBackend(), testOptions())
			for i := range tt.burst {
				if w := serve(h, tt.call(i)); w.Code == http.StatusTooManyRequests {
					t.Fatalf("call %d of a burst of %d was throttled", i+1, tt.burst)
				}
			}
			w := serve(h, tt.call(tt.burst))
			expect(t, w, http.StatusTooManyRequests, jsonType, throttled)
			if got := w.Header().Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want 1", got)
			}
			if w := serve(h, tt.other); w.Code != tt.otherStatus {
				t.Errorf("a call outside the bucket: status %d, want %d (body %s)", w.Code, tt.otherStatus, w.Body)
			}
		})
	}
}

func TestTheRateLimitRefillsWithTime(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := testNow
	opts := testOptions()
	opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := NewHandler(newFakeBackend(), opts)
	for range AnonymousBurst {
		serve(h, get("/open311/v2/services.json"))
	}
	if w := serve(h, get("/open311/v2/services.json")); w.Code != http.StatusTooManyRequests {
		t.Fatalf("status = %d past the burst, want 429", w.Code)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if w := serve(h, get("/open311/v2/services.json")); w.Code != http.StatusOK {
		t.Errorf("status = %d a second later, want 200", w.Code)
	}
}

func TestIdleLimitersAreForgotten(t *testing.T) {
	t.Parallel()
	l := &limiters{buckets: make(map[string]*bucket)}
	for range AnonymousBurst + 1 {
		l.take("ip a", AnonymousRate, AnonymousBurst, testNow)
	}
	l.take("ip b", AnonymousRate, AnonymousBurst, testNow.Add(LimiterIdle/2))
	if wait := l.take("ip c", AnonymousRate, AnonymousBurst, testNow.Add(LimiterIdle)); wait != 0 {
		t.Errorf("a new bucket made the call wait %v", wait)
	}
	var names []string
	for name := range l.buckets {
		names = append(names, name)
	}
	sort.Strings(names)
	if want := []string{"ip b", "ip c"}; !slices.Equal(names, want) {
		t.Errorf("buckets = %v, want %v", names, want)
	}
}

// sameQuery reports whether two queries are equal, comparing times as instants.
func sameQuery(a, b Query) bool {
	return slices.Equal(a.IDs, b.IDs) && a.ServiceCode == b.ServiceCode && a.Status == b.Status &&
		a.Start.Equal(b.Start) && a.End.Equal(b.End) && a.Limit == b.Limit
}

func TestGettingRequestsPassesTheFilters(t *testing.T) {
	t.Parallel()
	date := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		query string
		want  Query
	}{
		{"no filters ask for the last 90 days", "",
			Query{Start: testNow.Add(-DefaultWindow), End: testNow, Limit: MaxResults}},
		{"ids override every other filter", "service_request_id=1,%202,,3&service_code=001&status=bogus&start_date=bogus",
			Query{IDs: []string{"1", "2", "3"}, Limit: MaxResults}},
		{"every filter is passed", "service_code=001&status=open&start_date=2026-11-01T00:00:00%2B08:00&end_date=2026-11-30T00:00:00Z",
			Query{ServiceCode: "001", Status: "open", Start: date("2026-10-31T16:00:00Z"), End: date("2026-11-30T00:00:00Z"), Limit: MaxResults}},
		{"both statuses ask for all", "status=open,closed",
			Query{Start: testNow.Add(-DefaultWindow), End: testNow, Limit: MaxResults}},
		{"a status in capitals is understood", "status=CLOSED",
			Query{Status: "closed", Start: testNow.Add(-DefaultWindow), End: testNow, Limit: MaxResults}},
		{"several service codes are passed as one list", "service_code=001,%20002",
			Query{ServiceCode: "001,002", Start: testNow.Add(-DefaultWindow), End: testNow, Limit: MaxResults}},
		{"a start_date alone spans 90 days from it", "start_date=2026-01-01T00:00:00Z",
			Query{Start: date("2026-01-01T00:00:00Z"), End: date("2026-04-01T00:00:00Z"), Limit: MaxResults}},
		{"an end_date alone spans 90 days up to it", "end_date=2026-04-01T00:00:00Z",
			Query{Start: date("2026-01-01T00:00:00Z"), End: date("2026-04-01T00:00:00Z"), Limit: MaxResults}},
		{"equal dates are a valid instant", "start_date=2026-04-01T00:00:00Z&end_date=2026-04-01T08:00:00%2B08:00",
			Query{Start: date("2026-04-01T00:00:00Z"), End: date("2026-04-01T00:00:00Z"), Limit: MaxResults}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newFakeBackend()
			h := NewHandler(b, testOptions())
			expect(t, serve(h, get("/open311/v2/requests.json?"+tt.query)), http.StatusOK, jsonType, "[]\n")
			queries := b.seenQueries()
			if len(queries) != 1 || !sameQuery(queries[0], tt.want) {
				t.Errorf("Requests got %+v, want [%+v]", queries, tt.want)
			}
		})
	}
}

func TestGettingRequestsRefusesBadFilters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, query, want string
	}{
		{"a start_date after the end_date", "start_date=2026-05-02T00:00:00Z&end_date=2026-05-01T00:00:00Z",
			"start_date must not be after end_date"},
		{"a start_date that is not a datetime", "start_date=yesterday",
			"start_date must be a W3C datetime such as 2010-01-01T00:00:00Z"},
		{"an end_date without a time zone", "end_date=2026-05-01T00:00:00",
			"end_date must be a W3C datetime such as 2010-01-01T00:00:00Z"},
		{"an unknown status", "status=pending", "status must be open, closed or open,closed"},
		{"a service_request_id that is not UTF-8", "service_request_id=%FF", "service_request_id is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newFakeBackend()
			h := NewHandler(b, testOptions())
			expect(t, serve(h, get("/open311/v2/requests.json?"+tt.query)), http.StatusBadRequest, jsonType,
				jsonErrors(t, http.StatusBadRequest, tt.want))
			if q := b.seenQueries(); len(q) != 0 {
				t.Errorf("Requests was called with %+v", q)
			}
		})
	}
}

func TestRequestsAreWrittenInTheCitysTimeZone(t *testing.T) {
	t.Parallel()
	withPoint := Request{
		ServiceRequestID: "638344", Status: "closed", StatusNotes: "Duplicate request.",
		ServiceName: "Sidewalk and Curb Issues", ServiceCode: "006", AgencyResponsible: "Public Works",
		RequestedDatetime: time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC),
		UpdatedDatetime:   time.Date(2026, 12, 5, 1, 2, 3, 456789, time.UTC),
		ExpectedDatetime:  time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC),
		Address:           "8TH AVE and JUDAH ST", AddressID: "545483", Zipcode: "94122",
		Lat: 37.762221815, Long: -122.4651145, HasPoint: true,
		MediaURL: "http://city.gov/media/638344.jpg",
	}
	withoutPoint := Request{
		ServiceRequestID: "638349", Status: "open", ServiceName: "Graffiti", ServiceCode: "007",
		Description:       "Tag on <the> wall & door",
		RequestedDatetime: time.Date(2026, 12, 4, 23, 59, 59, 0, time.UTC),
		UpdatedDatetime:   time.Date(2026, 12, 4, 23, 59, 59, 0, time.UTC),
	}
	b := newFakeBackend()
	b.reqs["638344"] = withPoint
	b.list = []Request{withPoint, withoutPoint}
	tests := []struct {
		name        string
		zone        *time.Location
		path        string
		contentType string
		want        string
	}{
		{
			"one request in JSON, at +08:00", cityZone, "/open311/v2/requests/638344.json", jsonType,
			`[{"service_request_id":"638344","status":"closed","status_notes":"Duplicate request.",` +
				`"service_name":"Sidewalk and Curb Issues","service_code":"006","description":"","agency_responsible":"Public Works",` +
				`"service_notice":"","requested_datetime":"2026-12-04T17:30:00+08:00","updated_datetime":"2026-12-05T09:02:03+08:00",` +
				`"expected_datetime":"2026-12-06T08:00:00+08:00","address":"8TH AVE and JUDAH ST","address_id":"545483",` +
				`"zipcode":"94122","lat":37.762221815,"long":-122.4651145,"media_url":"http://city.gov/media/638344.jpg"}]` + "\n",
		},
		{
			"a list in XML, at +08:00, the second request without a point or an expected datetime", cityZone, "/open311/v2/requests.xml", xmlType,
			xmlHead + `<service_requests><request><service_request_id>638344</service_request_id><status>closed</status>` +
				`<status_notes>Duplicate request.</status_notes><service_name>Sidewalk and Curb Issues</service_name>` +
				`<service_code>006</service_code><description></description><agency_responsible>Public Works</agency_responsible>` +
				`<service_notice></service_notice><requested_datetime>2026-12-04T17:30:00+08:00</requested_datetime>` +
				`<updated_datetime>2026-12-05T09:02:03+08:00</updated_datetime><expected_datetime>2026-12-06T08:00:00+08:00</expected_datetime>` +
				`<address>8TH AVE and JUDAH ST</address><address_id>545483</address_id><zipcode>94122</zipcode>` +
				`<lat>37.762221815</lat><long>-122.4651145</long><media_url>http://city.gov/media/638344.jpg</media_url></request>` +
				`<request><service_request_id>638349</service_request_id><status>open</status><status_notes></status_notes>` +
				`<service_name>Graffiti</service_name><service_code>007</service_code><description>Tag on &lt;the&gt; wall &amp; door</description>` +
				`<agency_responsible></agency_responsible><service_notice></service_notice>` +
				`<requested_datetime>2026-12-05T07:59:59+08:00</requested_datetime><updated_datetime>2026-12-05T07:59:59+08:00</updated_datetime>` +
				`<expected_datetime></expected_datetime><address></address><address_id></address_id><zipcode></zipcode>` +
				`<media_url></media_url></request></service_requests>` + "\n",
		},
		{
			"a list in JSON, at -05:00", time.FixedZone("EST", -5*60*60), "/open311/v2/requests.json", jsonType,
			`[{"service_request_id":"638344","status":"closed","status_notes":"Duplicate request.",` +
				`"service_name":"Sidewalk and Curb Issues","service_code":"006","description":"","agency_responsible":"Public Works",` +
				`"service_notice":"","requested_datetime":"2026-12-04T04:30:00-05:00","updated_datetime":"2026-12-04T20:02:03-05:00",` +
				`"expected_datetime":"2026-12-05T19:00:00-05:00","address":"8TH AVE and JUDAH ST","address_id":"545483",` +
				`"zipcode":"94122","lat":37.762221815,"long":-122.4651145,"media_url":"http://city.gov/media/638344.jpg"},` +
				`{"service_request_id":"638349","status":"open","status_notes":"","service_name":"Graffiti","service_code":"007",` +
				`"description":"Tag on <the> wall & door","agency_responsible":"","service_notice":"",` +
				`"requested_datetime":"2026-12-04T18:59:59-05:00","updated_datetime":"2026-12-04T18:59:59-05:00",` +
				`"expected_datetime":"","address":"","address_id":"","zipcode":"","media_url":""}]` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions()
			opts.Location = tt.zone
			h := NewHandler(b, opts)
			expect(t, serve(h, get(tt.path)), http.StatusOK, tt.contentType, tt.want)
		})
	}
}

func TestARequestWithANonFiniteCoordinateIsAnInternalError(t *testing.T) {
	t.Parallel()
	b := newFakeBackend()
	b.reqs["1"] = Request{ServiceRequestID: "1", HasPoint: true, Lat: 1, Long: math.NaN()}
	var logs bytes.Buffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	h := NewHandler(b, opts)
	expect(t, serve(h, get("/open311/v2/requests/1.json")), http.StatusInternalServerError, jsonType,
		`[{"code":500,"description":"internal error"}]`+"\n")
	if !strings.Contains(logs.String(), "not a finite number") {
		t.Errorf("the encoding failure was not logged; log:\n%s", logs.String())
	}
}

func TestATokenIsAnsweredWithItsRequest(t *testing.T) {
	t.Parallel()
	b := newFakeBackend()
	b.tokens["12345"] = "638344"
	tests := []struct {
		path, contentType, want string
	}{
		{"/open311/v2/tokens/12345.json", jsonType, `[{"service_request_id":"638344","token":"12345"}]` + "\n"},
		{"/open311/v2/tokens/12345.xml", xmlType, xmlHead + `<service_requests><request><service_request_id>638344</service_request_id>` +
			`<token>12345</token></request></service_requests>` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			h := NewHandler(b, testOptions())
			expect(t, serve(h, get(tt.path)), http.StatusOK, tt.contentType, tt.want)
		})
	}
}

func TestAnIDWithAnEscapedSlashIsOneID(t *testing.T) {
	t.Parallel()
	b := newFakeBackend()
	b.tokens["a/b"] = "7"
	h := NewHandler(b, testOptions())
	expect(t, serve(h, get("/open311/v2/tokens/a%2Fb.json")), http.StatusOK, jsonType,
		`[{"service_request_id":"7","token":"a/b"}]`+"\n")
}
