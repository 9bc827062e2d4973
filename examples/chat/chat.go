package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/examples/client"
	"github.com/wsguard/kit/store/redisstore"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// subprotocol is the application protocol the page speaks; the token
// rides beside it as "bearer.<jwt>".
const subprotocol = "chat.v1"

// defaultTokenTTL is the lifetime of a demo token. Short, so that the
// page's refresh runs while someone watches.
const defaultTokenTTL = 5 * time.Minute

// config is what main, or a test, sets.
type config struct {
	// key verifies HS256 tokens (32 bytes or more). Without one a random
	// key is generated and the development-only token endpoint is on.
	key      []byte
	tokenTTL time.Duration // of demo tokens; 0 means defaultTokenTTL
	logger   *slog.Logger
	// redis, when set, makes rooms span every instance that shares it;
	// nil keeps them to this instance. The caller closes it.
	redis redis.UniversalClient
	// sendQueue bounds the bytes queued to one member that reads too
	// slowly, past which it is cut with 4429; 0 means
	// wsguard.DefaultSendQueueBytes.
	sendQueue int
}

// app is the chat server: the page at "/", the socket at "/ws" and,
// in demo mode, tokens at "/demo/token".
type app struct {
	mux      *http.ServeMux
	ws       *wsguard.Server
	verifier *auth.Verifier
	key      []byte
	demo     bool
	ttl      time.Duration
	log      *slog.Logger
	hub      *hub
	groups   *redisstore.Groups // nil without Redis
	sessions *auth.Sessions
}

// newApp builds the server from cfg; main and the tests both call it.
func newApp(cfg config) (*app, error) {
	a := &app{key: cfg.key, ttl: cfg.tokenTTL, log: errlog.OrDefault(cfg.logger)}
	if a.ttl <= 0 {
		a.ttl = defaultTokenTTL
	}
	if a.key == nil {
		a.key = make([]byte, 32)
		_, _ = rand.Read(a.key)
		a.demo = true
	}
	v, err := auth.NewVerifier(jwa.HS256(), a.key)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	a.verifier = v
	if cfg.redis != nil {
		a.groups = redisstore.New(cfg.redis).Groups()
	}
	a.hub = newHub(a.groups)

	val := validate.New()
	router := validate.NewRouter(val)
	validate.Handle(router, "join", a.join)
	validate.Handle(router, "say", a.say)

	a.sessions = auth.NewSessions(v)
	// The Origin check is wsguard's default: a page from another site
	// gets 403 before its token is even looked at.
	opts := append(a.sessions.Options(),
		// A connection leaves its room's groups when it ends, however
		// it ends; the hub then tells the room.
		wsguard.WithDisconnect(a.hub.leave),
		wsguard.WithMiddleware(validate.Audit(nil)),
		wsguard.WithSubprotocols(subprotocol),
		wsguard.WithLogger(a.log))
	if cfg.sendQueue > 0 {
		opts = append(opts, wsguard.WithSendQueue(cfg.sendQueue, wsguard.DefaultSendQueueMessages))
	}
	a.ws = wsguard.New(router, opts...)

	a.mux = http.NewServeMux()
	a.mux.Handle("GET /{$}", page)
	a.mux.Handle("GET /app.js", script(pageJS))
	a.mux.Handle("GET /wsguard.js", client.Handler())
	a.mux.Handle("GET /ws", a.ws)
	if a.demo {
		// POST, behind CrossOriginProtection, so that another site's page
		// cannot mint tokens in a visitor's browser.
		a.mux.Handle("POST /demo/token", http.NewCrossOriginProtection().Handler(http.HandlerFunc(a.demoToken)))
	}
	return a, nil
}

// ServeHTTP implements http.Handler.
func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Shutdown closes every connection with 1001, which the page takes as a
// cue to reconnect, and then stops receiving other instances' messages.
func (a *app) Shutdown(ctx context.Context) error {
	return errors.Join(a.ws.Shutdown(ctx), a.closeRooms())
}

// closeRooms stops receiving other instances' messages, once the
// connections are closed.
func (a *app) closeRooms() error {
	if a.groups == nil {
		return nil
	}
	return a.groups.Close()
}

// tokenRequest is what the page may send the demo endpoint.
type tokenRequest struct {
	Name string `json:"name"` // display name of a new guest
}

// tokenReply is the demo endpoint's answer.
type tokenReply struct {
	Token string `json:"token"`
	Exp   int64  `json:"exp"` // Unix seconds
	Sub   string `json:"sub"`
	Name  string `json:"name"`
}

// nameClaim is the private claim that carries a display name.
const nameClaim = "name"

// maxNameRunes bounds a display name.
const maxNameRunes = 32

// validName reports whether s can be shown as a name: 1 to 32 printable
// characters, without leading or trailing space.
func validName(s string) bool {
	if s == "" || s != strings.TrimSpace(s) || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxNameRunes {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// displayName is the name p's token gives, or its subject when it gives
// none that can be shown.
func displayName(p *auth.Principal) string {
	if n, ok := p.Claims[nameClaim].(string); ok && validName(n) {
		return n
	}
	return p.Subject
}

var errBadName = errors.New("display name: 1 to 32 printable characters")

// demoToken hands out a short-lived token: for the subject and name of a
// still valid token in the Authorization header (a refresh keeps the
// identity, which the socket's in-band refresh requires), else for a new
// guest with the name in the request body, if any.
func (a *app) demoToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&req); err != nil {
			code := errlog.InvalidArgument
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				code = errlog.TooLarge
			}
			wsguard.Reject(w, r, a.log, errlog.NewError(code, err))
			return
		}
		if req.Name != "" && !validName(req.Name) {
			wsguard.Reject(w, r, a.log, errlog.NewError(errlog.InvalidArgument, errBadName))
			return
		}
	}
	sub, name := "", req.Name
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if p, err := a.verifier.Verify(r.Context(), auth.Token(tok)); err == nil {
			sub, name = p.Subject, displayName(p)
		}
	}
	if sub == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		sub = "guest-" + base64.RawURLEncoding.EncodeToString(b)
	}
	if name == "" {
		name = sub
	}
	now := time.Now()
	exp := now.Add(a.ttl)
	// A token id of its own, so that two tokens minted in one second
	// differ: the page tells a new token from the one just refused.
	id := make([]byte, 9)
	_, _ = rand.Read(id)
	tok, err := auth.Sign(jwa.HS256(), a.key, auth.Claims{
		Subject: sub, IssuedAt: now, Expiry: exp, ID: base64.RawURLEncoding.EncodeToString(id),
		Extra: map[string]any{nameClaim: name},
	})
	if err != nil {
		wsguard.Reject(w, r, a.log, errlog.NewError(errlog.Internal, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(tokenReply{Token: string(tok), Exp: exp.Unix(), Sub: sub, Name: name})
}

// page serves the single HTML page with its inline style, under a
// Content-Security-Policy that allows that style (by hash), scripts from
// this origin (the page's module and the client module it imports) and
// connections to this origin: nothing external loads, and injected
// markup could run nothing.
var page = func() http.Handler {
	html := strings.NewReplacer("/*STYLE*/", pageCSS).Replace(pageHTML)
	sum := sha256.Sum256([]byte(pageCSS))
	csp := "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; script-src 'self'" +
		"; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(html))
	})
}()

// script serves the page's own module.
func script(js string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(js))
	})
}

var errNotJoined = errors.New("say before join")
