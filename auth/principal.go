package auth

import (
	"context"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"
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
	// float64, bool, []any, map[string]any).
	Claims map[string]any
}

func newPrincipal(t jwt.Token) *Principal {
	p := &Principal{Claims: make(map[string]any)}
	for _, k := range t.Keys() {
		switch k {
		case jwt.SubjectKey, jwt.IssuerKey, jwt.AudienceKey, jwt.ExpirationKey,
			jwt.NotBeforeKey, jwt.IssuedAtKey, jwt.JwtIDKey:
			continue
		}
		var v any
		if t.Get(k, &v) == nil {
			p.Claims[k] = v
		}
	}
	p.Subject, _ = t.Subject()
	p.Issuer, _ = t.Issuer()
	p.Audience, _ = t.Audience()
	p.Expiry, _ = t.Expiration()
	p.IssuedAt, _ = t.IssuedAt()
	p.TokenID, _ = t.JwtID()
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
