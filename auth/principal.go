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

func newPrincipal(c *claims) *Principal {
	return &Principal{
		Subject:  c.Subject.v,
		Issuer:   c.Issuer.v,
		Audience: c.Audience.v,
		Expiry:   c.exp,
		IssuedAt: c.iat,
		TokenID:  c.ID.v,
		Claims:   c.Private,
	}
}

// clone returns a copy of p that shares nothing mutable with it.
func (p *Principal) clone() *Principal {
	c := *p
	if p.Audience != nil {
		c.Audience = slices.Clone(p.Audience)
	}
	if p.Claims != nil {
		c.Claims = cloneObject(p.Claims)
	}
	return &c
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

// withSession returns ctx carrying s, which holds the principal.
func withSession(ctx context.Context, s *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
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
