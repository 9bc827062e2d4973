package auth

import (
	"context"
	"time"
)

// Principal is whom a verified token authenticates. It is immutable: a
// refresh replaces it.
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
	p := &Principal{
		Subject:  *c.Subject,
		Expiry:   c.exp,
		IssuedAt: c.iat,
		Claims:   c.Private,
	}
	if c.Issuer != nil {
		p.Issuer = *c.Issuer
	}
	if c.Audience != nil {
		p.Audience = *c.Audience
	}
	if c.ID != nil {
		p.TokenID = *c.ID
	}
	return p
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
