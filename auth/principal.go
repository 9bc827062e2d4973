package auth

import (
	"context"
	"slices"
	"time"
)

// Principal is whom a verified token authenticates. Every
// [Verifier.Verify] returns a Principal of its own, down to its Audience
// slice and Claims map, so that what one connection's code does to its
// principal reaches no other connection presenting the same token, even
// when the answer came from the verified-token cache. A connection's
// principal is shared by its own handlers and replaced, not changed, by a
// refresh: treat it as read-only.
type Principal struct {
	Subject  string    // sub, never empty
	Issuer   string    // iss, or ""
	Audience []string  // aud
	Expiry   time.Time // exp, always set
	IssuedAt time.Time // iat, or zero
	TokenID  string    // jti, or ""
	// Claims holds the private claims, as decoded from JSON (strings,
	// float64, bool, []any, map[string]any); nil when there are none.
	Claims map[string]any
}

// newPrincipal returns the principal of c, written into dst when dst is
// not nil.
func newPrincipal(c *claims, dst *Principal) *Principal {
	if dst == nil {
		dst = new(Principal)
	}
	dst.Subject, dst.Issuer, dst.Audience = c.Subject.v, c.Issuer.v, c.Audience.v
	dst.Expiry, dst.IssuedAt = c.exp, c.iat
	dst.TokenID, dst.Claims = c.ID.v, c.Private
	return dst
}

// cloneTo returns a copy of p that shares nothing mutable with it,
// written into dst when dst is not nil.
func (p *Principal) cloneTo(dst *Principal) *Principal {
	if dst == nil {
		dst = new(Principal)
	}
	*dst = *p
	if p.Audience != nil {
		dst.Audience = slices.Clone(p.Audience)
	}
	if p.Claims != nil {
		dst.Claims = cloneObject(p.Claims)
	}
	return dst
}

// cloneObject copies a JSON object decoded into any, with its nested
// objects and arrays; strings, numbers, booleans and nulls are values.
func cloneObject(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = cloneValue(v)
	}
	return c
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneObject(v)
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneValue(e)
		}
		return c
	}
	return v
}

type sessionKey struct{}

// withSession returns ctx carrying s, which holds the principal. The
// context is s's own (s.ctx), so it costs no allocation; s carries one
// request's context only.
func withSession(ctx context.Context, s *session) context.Context {
	s.ctx = sessionContext{Context: ctx, s: s}
	return &s.ctx
}

// sessionContext is a context carrying a session, as context.WithValue
// would make it.
type sessionContext struct {
	context.Context
	s *session
}

// Value implements context.Context.
func (c *sessionContext) Value(key any) any {
	if _, ok := key.(sessionKey); ok {
		return c.s
	}
	return c.Context.Value(key)
}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// PrincipalFrom returns the principal authenticated for the request or
// connection of ctx: the handshake's, the first message's, or the latest
// refresh's. ok is false before authentication.
func PrincipalFrom(ctx context.Context) (p *Principal, ok bool) {
	if s := sessionFrom(ctx); s != nil {
		p = s.principal.Load()
	}
	return p, p != nil
}
