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
