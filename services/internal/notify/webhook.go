package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/clock"
)

// Webhook headers.
const (
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
	HeaderSignature = "Whistle-Signature"
	// HeaderDelivery carries the notification id, for the receiver's idempotency.
	HeaderDelivery = "Whistle-Delivery"
)

// Webhook limits and defaults.
const (
	// DefaultTimeout bounds one attempt: connecting, sending and reading the answer's head.
	DefaultTimeout = 10 * time.Second
	// MinSecretLength is the shortest secret a webhook signs with.
	MinSecretLength = 16
	// DefaultTolerance is how far a signature's time may lie from the receiver's clock before
	// Verify refuses it as a replay.
	DefaultTolerance = 5 * time.Minute
)

// Payload is the JSON body the webhook posts.
type Payload struct {
	ID        string    `json:"id"`
	Recipient Recipient `json:"recipient"`
	IssueID   string    `json:"issue_id"`
	Event     EventRef  `json:"event"`
	Text      Texts     `json:"text"`
	// OccurredAt is when the stream stored the event, RFC 3339.
	OccurredAt time.Time `json:"occurred_at"`
}

// Recipient is who a payload is for.
type Recipient struct {
	ID   string `json:"id"`
	Role Role   `json:"role"`
}

// EventRef names the event a payload tells of.
type EventRef struct {
	Kind string `json:"kind"`
	Seq  uint64 `json:"seq"`
}

// Texts is the message in Chinese and in English.
type Texts struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

// PayloadOf is the body posted for n.
func PayloadOf(n Notification) Payload {
	return Payload{ID: n.ID, Recipient: Recipient{ID: n.Recipient, Role: n.Role}, IssueID: n.IssueID,
		Event: EventRef{Kind: n.Kind, Seq: n.Seq}, Text: Texts{ZH: n.Text, EN: n.TextEn}, OccurredAt: n.OccurredAt}
}

// WebhookConfig is where a webhook posts and how it signs.
type WebhookConfig struct {
	// URL is an absolute http or https URL.
	URL string
	// Secret is the shared key of the signatures, at least MinSecretLength bytes.
	Secret string
	// Timeout bounds one attempt; zero means DefaultTimeout.
	Timeout time.Duration
}

// Check says what is wrong with the configuration, naming the setting.
func (c WebhookConfig) Check() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return errors.New("notify: the webhook URL is empty")
	case err != nil:
		return fmt.Errorf("notify: webhook URL %q: %w", c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("notify: webhook URL %q: the scheme must be http or https", c.URL)
	case u.Host == "":
		return fmt.Errorf("notify: webhook URL %q names no host", c.URL)
	case c.Secret == "":
		return errors.New("notify: a webhook needs a secret to sign with (WHISTLE_WEBHOOK_SECRET is empty)")
	case len(c.Secret) < MinSecretLength:
		return fmt.Errorf("notify: the webhook secret is %d bytes; it must be at least %d", len(c.Secret), MinSecretLength)
	case c.Timeout < 0:
		return fmt.Errorf("notify: webhook timeout %s is negative", c.Timeout)
	}
	return nil
}

// Webhook is the Notifier that posts each notification as JSON to one URL, signed.
type Webhook struct {
	cfg    WebhookConfig
	clock  clock.Clock
	client *http.Client
}

var _ Notifier = (*Webhook)(nil)

// NewWebhook returns a webhook after checking cfg. clk stamps the signatures; nil means the real
// clock.
func NewWebhook(cfg WebhookConfig, clk clock.Clock) (*Webhook, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if clk == nil {
		clk = clock.Real()
	}
	client := &http.Client{Timeout: cfg.Timeout,
		// A signed notification goes where it was configured to, or not at all: a redirect is
		// answered as the receiver's refusal.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Webhook{cfg: cfg, clock: clk, client: client}, nil
}

// Notify posts n. A 2xx answer delivers it; a 408, a 429, a 5xx, a timeout or a failed
// connection may pass and is retried; any other answer is refused for good.
func (w *Webhook) Notify(ctx context.Context, n Notification) (int, error) {
	body, err := json.Marshal(PayloadOf(n))
	if err != nil {
		return 0, Refused(fmt.Errorf("encode: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, Refused(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "whistle-notify")
	req.Header.Set(HeaderDelivery, n.ID)
	req.Header.Set(HeaderSignature, Sign([]byte(w.cfg.Secret), w.clock.Now(), body))
	resp, err := w.client.Do(req)
	if err != nil {
		// The cause without the URL, which may carry a token: attempts are shown to supervisors.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return code, nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return code, fmt.Errorf("the receiver answered %d", code)
	default:
		return code, Refused(fmt.Errorf("the receiver answered %d", code))
	}
}

// Sign is the signature header of body sent at t: the time in unix seconds and the hex
// HMAC-SHA256, under secret, of the time, a dot and the body. Signing the time with the body lets a
// receiver refuse an old request replayed.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

// mac is the hex HMAC-SHA256 of "<ts>.<body>".
func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is what Verify returns for a request that was not signed with the secret, or
// was signed too long ago.
var ErrBadSignature = errors.New("notify: bad signature")

// Verify checks a request's signature header against its raw body, as a receiver does: the
// HMAC-SHA256 under secret of "<t>.<body>" must equal a v1 value (compared in constant time), and t
// must lie within tolerance of now. A receiver in another language does the same: split the header
// on commas, take t and v1, compute the HMAC and compare.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix>,v1=<hex>", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now", ErrBadSignature, time.Unix(sec, 0).UTC().Format(time.RFC3339), d)
	}
	want := []byte(mac(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 value matches", ErrBadSignature)
}
