package auth

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// Defaults of [Sessions].
const (
	// DefaultAuthTimeout is how long a connection that did not present a
	// token at the handshake has to send it as its first message.
	DefaultAuthTimeout = 5 * time.Second
	// DefaultRevocationInterval is how often an open connection's token
	// is checked against the [Revoker].
	DefaultRevocationInterval = time.Minute
)

// Option configures [Middleware] and [Sessions].
type Option func(*config)

type config struct {
	places
	firstMessage bool
	authTimeout  time.Duration
	revoker      Revoker
	revokeEvery  time.Duration
	onAuth       func(context.Context, *wsguard.Conn, *Principal) error
	// sessionsOnly names the first option given that only [Sessions]
	// can honour, for [Middleware] to refuse.
	sessionsOnly string
	bad          string // the first option refused, for the constructor's panic
}

// refuse records that the option call refused its value; [NewSessions]
// and [Middleware] panic with the first.
func (c *config) refuse(call, why string) {
	if c.bad == "" {
		c.bad = "auth: " + call + ": " + why
	}
}

// onlyForSessions records that an option needs a connection to act on.
func (c *config) onlyForSessions(name string) {
	if c.sessionsOnly == "" {
		c.sessionsOnly = name
	}
}

// WithCookie also takes the token from the cookie of the given name when
// neither the Authorization header nor the subprotocol carries one. A
// cookie is sent by the browser on its own, so keep the Origin check
// (wsguard's default) in front. An empty name is refused.
func WithCookie(name string) Option {
	return func(c *config) {
		if name == "" {
			c.refuse(`WithCookie("")`, "needs a cookie name")
		}
		c.cookie = name
	}
}

// InsecureQueryToken also takes the token from the query parameter of the
// given name. URLs end up in access logs, proxy logs and browser history,
// where a token outlives its purpose: use it only for clients that can
// set neither a header nor a subprotocol. The parameter is removed from
// the request before anything after this middleware sees it, and this
// module never logs a query string. An empty name is refused.
func InsecureQueryToken(param string) Option {
	return func(c *config) {
		if param == "" {
			c.refuse(`InsecureQueryToken("")`, "needs a parameter name")
		}
		c.query = param
	}
}

// WithFirstMessage lets a handshake without a token through. With
// [Sessions], the connection's first text message must then be the token
// (at most the verifier's size cap), within timeout (zero:
// [DefaultAuthTimeout]; a negative timeout is refused); past it the
// connection closes with 4408. With [Middleware] alone, the handler is
// called without a principal and must authenticate the client itself; a
// positive timeout, which it cannot enforce, makes Middleware panic. An
// invalid token is refused either way.
func WithFirstMessage(timeout time.Duration) Option {
	return func(c *config) {
		if timeout < 0 {
			c.refuse(fmt.Sprintf("WithFirstMessage(%v)", timeout), "must be >= 0 (0: the default)")
		}
		c.firstMessage = true
		if timeout > 0 {
			c.authTimeout = timeout
			c.onlyForSessions("WithFirstMessage with a timeout")
		}
	}
}

// WithRevoker checks tokens against r at the handshake, on each refresh
// and, for open connections, every interval (zero:
// [DefaultRevocationInterval]; a negative interval or a nil r is
// refused). A revoked token is refused as "invalid token" (HTTP 401,
// close 4401). [Middleware] checks the handshake only: give it a zero
// interval, as a positive one, which it cannot honour, makes it panic.
func WithRevoker(r Revoker, interval time.Duration) Option {
	return func(c *config) {
		switch {
		case r == nil:
			c.refuse("WithRevoker(nil, ...)", "needs a Revoker")
		case interval < 0:
			c.refuse(fmt.Sprintf("WithRevoker(..., %v)", interval), "the interval must be >= 0 (0: the default)")
		}
		c.revoker = r
		if interval > 0 {
			c.revokeEvery = interval
			c.onlyForSessions("WithRevoker with an interval")
		}
	}
}

// OnAuthenticated calls f once a connection of [Sessions] is
// authenticated, from the handshake's token or from its first message:
// the place to greet the client. An error closes the connection as its
// code says. [Middleware], which sees no connection and could never call
// it, panics when given it. A nil f is refused.
func OnAuthenticated(f func(ctx context.Context, c *wsguard.Conn, p *Principal) error) Option {
	return func(c *config) {
		if f == nil {
			c.refuse("OnAuthenticated(nil)", "needs a function")
		}
		c.onAuth = f
		c.onlyForSessions("OnAuthenticated")
	}
}

// Middleware returns HTTP middleware that authenticates a request before
// the handler it wraps runs, in front of any handler: a wsguard.Server
// (which [Sessions.Options] does for you, adding expiry and refresh), or a
// handler written with another WebSocket library.
//
// The token is taken from "Authorization: Bearer <token>", from a
// "bearer.<token>" entry of Sec-WebSocket-Protocol offered beside an
// application protocol, and, when configured, from a cookie
// ([WithCookie]) or the query string ([InsecureQueryToken]). The
// subprotocol entry is removed from the request, so that the handler
// selects the application protocol and can never echo the token.
//
// A valid token puts its [Principal] in the request context
// ([PrincipalFrom]) and its subject in wsguard's log lines
// (wsguard.WithSubject). A missing, invalid, expired or revoked token is
// answered with 401, `WWW-Authenticate: Bearer error="invalid_token"` and
// the body "invalid token" or "token expired" (never the token), and
// logged once with the reason. A missing token is let through only with
// [WithFirstMessage].
//
// Middleware panics, at start-up as wsguard.New does, when given an option
// only [Sessions] can honour, which it would otherwise drop without a
// word: [OnAuthenticated], [WithFirstMessage] with a positive timeout and
// [WithRevoker] with a positive interval.
func Middleware(v *Verifier, opts ...Option) func(http.Handler) http.Handler {
	s := NewSessions(v, opts...)
	if s.cfg.sessionsOnly != "" {
		panic("auth: " + s.cfg.sessionsOnly + " applies to NewSessions only: Middleware sees no connection")
	}
	return s.handshake
}

func (s *Sessions) handshake(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The handler's frame stays on the serving goroutine's stack for
		// the connection's whole life: the work is in admit's, which is
		// gone by then, so that an idle connection's stack can shrink.
		if r = s.admit(w, r); r != nil {
			next.ServeHTTP(w, r)
		}
	})
}

// admit authenticates r and returns it carrying the session, or answers
// with the refusal and returns nil.
//
//go:noinline
func (s *Sessions) admit(w http.ResponseWriter, r *http.Request) *http.Request {
	tok, r, err := s.cfg.extract(r)
	if err == nil && tok == "" && !s.cfg.firstMessage {
		err = invalidf("no token", nil)
	}
	ss := &session{owner: s}
	if err == nil && tok != "" {
		var p *Principal
		if p, err = s.verify(r.Context(), tok, &ss.first); err == nil {
			ss.principal.Store(p)
		}
	}
	if err != nil {
		wsguard.Reject(w, r, nil, err)
		return nil
	}
	ctx := withSession(r.Context(), ss)
	if p := ss.principal.Load(); p != nil {
		ctx = wsguard.WithSubject(ctx, p.Subject)
	}
	return r.WithContext(ctx)
}

// verify verifies tok and checks it against the revoker. The principal
// is written into dst when dst is not nil.
func (s *Sessions) verify(ctx context.Context, tok Token, dst *Principal) (*Principal, error) {
	p, err := s.v.verifyTo(ctx, tok, dst)
	if err != nil {
		return nil, err
	}
	if err := s.checkRevoked(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Sessions) checkRevoked(ctx context.Context, p *Principal) error {
	if s.cfg.revoker == nil {
		return nil
	}
	revoked, err := s.cfg.revoker.Revoked(ctx, p)
	switch {
	case err != nil:
		return errlog.NewError(errlog.Unavailable, fmt.Errorf("revocation check: %w", err))
	case revoked:
		return invalidf("revoked", nil)
	}
	return nil
}
