// Package console is Whistle's web console: server-rendered pages for each role, kept live with
// server-sent events, that reach the services only through their gRPC APIs with the signed-in
// person's own token, so the role and scope decide every page and action exactly as on the API.
//
// A person signs in with a one-time link (whistle login-link); the console keeps the session in
// Redis and hands the browser only its id, in an HttpOnly, SameSite=Strict cookie. Every form
// carries the session's CSRF token. Pages are in Chinese by default and in English, every string
// from the message catalogs in locales/.
package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/authx"
)

// Path is where the console is mounted.
const Path = "/console/"

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Config is what the console needs; Conn, Authority and Redis are required.
type Config struct {
	// Conn reaches the services; each call carries the signed-in person's token.
	Conn grpc.ClientConnInterface
	// Authority verifies sign-in links and mints each session's token.
	Authority *authx.Authority
	// Redis holds the sessions and the links already used.
	Redis redis.UniversalClient
	// Zone is the city's time zone, in which times are shown; nil means time.Local.
	Zone *time.Location
	// Now is the clock of the time left before a deadline; nil means time.Now.
	Now func() time.Time
	// Logger receives what a person is not shown; nil means slog.Default().
	Logger *slog.Logger
	// MapTiles is the city's tile server, as a URL template with {z}, {x} and {y} (Leaflet's);
	// empty draws the grids' boundaries alone, and nothing is fetched from elsewhere.
	MapTiles string
}

// Console serves the pages. It holds no state of its own beyond its parsed templates.
type Console struct {
	cfg      Config
	sessions sessions
	catalogs catalogs
	pages    map[string]*template.Template
	csp      string // the Content-Security-Policy of every page
	mux      *http.ServeMux
	cats     categoryCache
}

// New parses the templates and routes the pages.
func New(cfg Config) (*Console, error) {
	if cfg.Conn == nil || cfg.Authority == nil || cfg.Redis == nil {
		return nil, errors.New("console: Conn, Authority and Redis are required")
	}
	if cfg.Zone == nil {
		cfg.Zone = time.Local
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	cats, err := loadCatalogs()
	if err != nil {
		return nil, err
	}
	csp, err := contentPolicy(cfg.MapTiles)
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, sessions: sessions{rdb: cfg.Redis, authority: cfg.Authority, now: cfg.Now}, catalogs: cats, pages: pages, csp: csp}
	c.routes()
	return c, nil
}

// ServeHTTP serves every page under Path.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Pages show a person's work: never cached, never framed by another site.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", c.csp)
	c.mux.ServeHTTP(w, r)
}

// contentPolicy is the pages' Content-Security-Policy: everything from the console alone, but the
// map's tiles from the city's tile server when it has one.
func contentPolicy(tiles string) (string, error) {
	img := "'self' data: blob:"
	if tiles != "" {
		u, err := url.Parse(tiles)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "", fmt.Errorf("console: the map's tile server %q is not an http or https URL", tiles)
		}
		img += " " + u.Scheme + "://" + u.Host
	}
	return "default-src 'self'; img-src " + img + "; style-src 'self'; script-src 'self'; connect-src 'self'; " +
		"frame-ancestors 'none'; form-action 'self'", nil
}

// parsePages parses each page with the layout it fills.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		if name == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", name, err)
		}
		pages[name[len("templates/"):]] = t
	}
	return pages, nil
}

// funcs are the templates' functions beyond html/template's own.
var funcs = template.FuncMap{
	// role names a role for the catalog's keys.
	"role": func(r authx.Role) string { return "role." + string(r) },
}
