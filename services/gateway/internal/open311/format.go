package open311

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// format is an encoding a path asks for with its extension.
type format string

const (
	formatJSON format = "json"
	formatXML  format = "xml"
)

// parseFormat reads a path's extension.
func parseFormat(ext string) (format, bool) {
	switch f := format(ext); f {
	case formatJSON, formatXML:
		return f, true
	}
	return "", false
}

// contentType is the format's Content-Type, as the specification writes it.
func (f format) contentType() string {
	if f == formatXML {
		return "text/xml; charset=utf-8"
	}
	return "application/json; charset=utf-8"
}

// xmlHeader starts every XML document, spelled as in the specification's examples.
const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"

// document is one answer in both encodings. The two differ where the specification's JSON is
// a bare array and its XML a root element holding the items.
type document struct {
	json any
	xml  any
}

// encode writes d in format f.
func encode(f format, d document) ([]byte, error) {
	var buf bytes.Buffer
	if f == formatXML {
		buf.WriteString(xmlHeader)
		if err := xml.NewEncoder(&buf).Encode(d.xml); err != nil {
			return nil, err
		}
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	}
	enc := json.NewEncoder(&buf)
	// Descriptions and URLs are for people; keep their <, > and & readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d.json); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// The wire forms. Field order is the specification's; every field is written, even empty,
// unless it says otherwise.

type errorOut struct {
	Code        int    `json:"code" xml:"code"`
	Description string `json:"description" xml:"description"`
}

type errorsXML struct {
	XMLName xml.Name   `xml:"errors"`
	Errors  []errorOut `xml:"error"`
}

func errorsDocument(status int, descriptions []string) document {
	list := make([]errorOut, 0, len(descriptions))
	for _, d := range descriptions {
		list = append(list, errorOut{Code: status, Description: d})
	}
	return document{json: list, xml: errorsXML{Errors: list}}
}

type discoveryOut struct {
	XMLName    xml.Name      `json:"-" xml:"discovery"`
	Changeset  string        `json:"changeset" xml:"changeset"`
	Contact    string        `json:"contact" xml:"contact"`
	KeyService string        `json:"key_service" xml:"key_service"`
	Endpoints  []endpointOut `json:"endpoints" xml:"endpoints>endpoint"`
}

type endpointOut struct {
	Specification string   `json:"specification" xml:"specification"`
	URL           string   `json:"url" xml:"url"`
	Changeset     string   `json:"changeset" xml:"changeset"`
	Type          string   `json:"type" xml:"type"`
	Formats       []string `json:"formats" xml:"formats>format"`
}

// specification is the token discovery names GeoReport v2 by.
const specification = "http://wiki.open311.org/GeoReport_v2"

func discoveryDocument(changeset, contact, keyService, url string) document {
	d := discoveryOut{
		Changeset:  changeset,
		Contact:    contact,
		KeyService: keyService,
		Endpoints: []endpointOut{{
			Specification: specification,
			URL:           url,
			Changeset:     changeset,
			Type:          "production",
			Formats:       []string{formatXML.mediaType(), formatJSON.mediaType()},
		}},
	}
	return document{json: d, xml: d}
}

// mediaType is the format's MIME type without parameters, as discovery lists it.
func (f format) mediaType() string {
	t, _, _ := strings.Cut(f.contentType(), ";")
	return t
}

type serviceOut struct {
	Code        string `json:"service_code" xml:"service_code"`
	Name        string `json:"service_name" xml:"service_name"`
	Description string `json:"description" xml:"description"`
	Metadata    bool   `json:"metadata" xml:"metadata"`
	Type        string `json:"type" xml:"type"`
	Keywords    string `json:"keywords" xml:"keywords"`
	Group       string `json:"group" xml:"group"`
}

type servicesXML struct {
	XMLName  xml.Name     `xml:"services"`
	Services []serviceOut `xml:"service"`
}

func servicesDocument(services []Service) document {
	list := make([]serviceOut, 0, len(services))
	for _, s := range services {
		list = append(list, serviceOut{
			Code:        s.Code,
			Name:        s.Name,
			Description: s.Description,
			Metadata:    s.Metadata,
			Type:        s.Type,
			// The specification's keywords are one string, "lorem, ipsum, dolor".
			Keywords: strings.Join(s.Keywords, ", "),
			Group:    s.Group,
		})
	}
	return document{json: list, xml: servicesXML{Services: list}}
}

type definitionOut struct {
	XMLName    xml.Name       `json:"-" xml:"service_definition"`
	Code       string         `json:"service_code" xml:"service_code"`
	Attributes []attributeOut `json:"attributes" xml:"attributes>attribute"`
}

type attributeOut struct {
	Variable            bool       `json:"variable" xml:"variable"`
	Code                string     `json:"code" xml:"code"`
	Datatype            string     `json:"datatype" xml:"datatype"`
	Required            bool       `json:"required" xml:"required"`
	DatatypeDescription string     `json:"datatype_description" xml:"datatype_description"`
	Order               int        `json:"order" xml:"order"`
	Description         string     `json:"description" xml:"description"`
	Values              []valueOut `json:"values" xml:"values>value"`
}

type valueOut struct {
	Key  string `json:"key" xml:"key"`
	Name string `json:"name" xml:"name"`
}

// definitionDocument is a service definition: in JSON too a single object, as the
// specification shows it.
func definitionDocument(d Definition) document {
	out := definitionOut{Code: d.Code, Attributes: make([]attributeOut, 0, len(d.Attributes))}
	for _, a := range d.Attributes {
		values := make([]valueOut, 0, len(a.Values))
		for _, v := range a.Values {
			values = append(values, valueOut{Key: v.Key, Name: v.Name})
		}
		out.Attributes = append(out.Attributes, attributeOut{
			Variable:            a.Variable,
			Code:                a.Code,
			Datatype:            a.Datatype,
			Required:            a.Required,
			DatatypeDescription: a.DatatypeDescription,
			Order:               a.Order,
			Description:         a.Description,
			Values:              values,
		})
	}
	return document{json: out, xml: out}
}

// serviceRequestsXML is the root the specification puts around request lists, POST
// receipts and tokens alike.
type serviceRequestsXML[T any] struct {
	XMLName  xml.Name `xml:"service_requests"`
	Requests []T      `xml:"request"`
}

// receiptOut is a POST's answer. The specification returns a service_request_id or a
// token, never both, so each is left out when empty.
type receiptOut struct {
	ServiceRequestID string `json:"service_request_id,omitempty" xml:"service_request_id,omitempty"`
	Token            string `json:"token,omitempty" xml:"token,omitempty"`
	ServiceNotice    string `json:"service_notice" xml:"service_notice"`
	AccountID        string `json:"account_id" xml:"account_id"`
}

func receiptDocument(r Receipt) document {
	list := []receiptOut{{
		ServiceRequestID: r.ServiceRequestID,
		Token:            r.Token,
		ServiceNotice:    r.ServiceNotice,
		AccountID:        r.AccountID,
	}}
	return document{json: list, xml: serviceRequestsXML[receiptOut]{Requests: list}}
}

type tokenOut struct {
	ServiceRequestID string `json:"service_request_id" xml:"service_request_id"`
	Token            string `json:"token" xml:"token"`
}

func tokenDocument(id, token string) document {
	list := []tokenOut{{ServiceRequestID: id, Token: token}}
	return document{json: list, xml: serviceRequestsXML[tokenOut]{Requests: list}}
}

type requestOut struct {
	ServiceRequestID  string      `json:"service_request_id" xml:"service_request_id"`
	Status            string      `json:"status" xml:"status"`
	StatusNotes       string      `json:"status_notes" xml:"status_notes"`
	ServiceName       string      `json:"service_name" xml:"service_name"`
	ServiceCode       string      `json:"service_code" xml:"service_code"`
	Description       string      `json:"description" xml:"description"`
	AgencyResponsible string      `json:"agency_responsible" xml:"agency_responsible"`
	ServiceNotice     string      `json:"service_notice" xml:"service_notice"`
	RequestedDatetime string      `json:"requested_datetime" xml:"requested_datetime"`
	UpdatedDatetime   string      `json:"updated_datetime" xml:"updated_datetime"`
	ExpectedDatetime  string      `json:"expected_datetime" xml:"expected_datetime"`
	Address           string      `json:"address" xml:"address"`
	AddressID         string      `json:"address_id" xml:"address_id"`
	Zipcode           string      `json:"zipcode" xml:"zipcode"`
	Lat               *coordinate `json:"lat,omitempty" xml:"lat,omitempty"`
	Long              *coordinate `json:"long,omitempty" xml:"long,omitempty"`
	MediaURL          string      `json:"media_url" xml:"media_url"`
}

// requestsDocument is a list of requests, their datetimes written in loc.
func requestsDocument(requests []Request, loc *time.Location) document {
	list := make([]requestOut, 0, len(requests))
	for _, r := range requests {
		out := requestOut{
			ServiceRequestID:  r.ServiceRequestID,
			Status:            r.Status,
			StatusNotes:       r.StatusNotes,
			ServiceName:       r.ServiceName,
			ServiceCode:       r.ServiceCode,
			Description:       r.Description,
			AgencyResponsible: r.AgencyResponsible,
			ServiceNotice:     r.ServiceNotice,
			RequestedDatetime: w3cDatetime(r.RequestedDatetime, loc),
			UpdatedDatetime:   w3cDatetime(r.UpdatedDatetime, loc),
			ExpectedDatetime:  w3cDatetime(r.ExpectedDatetime, loc),
			Address:           r.Address,
			AddressID:         r.AddressID,
			Zipcode:           r.Zipcode,
			MediaURL:          r.MediaURL,
		}
		if r.HasPoint {
			lat, long := coordinate(r.Lat), coordinate(r.Long)
			out.Lat, out.Long = &lat, &long
		}
		list = append(list, out)
	}
	return document{json: list, xml: serviceRequestsXML[requestOut]{Requests: list}}
}

// w3cDatetime writes t as the specification's datetimes are written: RFC 3339 with the
// offset of loc, whole seconds. The zero time, a datetime not known yet, is empty.
func w3cDatetime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(time.RFC3339)
}

// coordinate is a latitude or longitude, written as a plain decimal number in both
// formats (never in exponent form, which some XML clients do not read as a number).
type coordinate float64

// MarshalText writes the number for XML.
func (c coordinate) MarshalText() ([]byte, error) {
	v := float64(c)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("coordinate %v is not a finite number", v)
	}
	return strconv.AppendFloat(nil, v, 'f', -1, 64), nil
}

// MarshalJSON writes the number for JSON, unquoted.
func (c coordinate) MarshalJSON() ([]byte, error) {
	return c.MarshalText()
}
