package auth

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/wsguard/kit/errlog"
)

// Token is a bearer token in compact JWS form. It logs and prints as
// REDACTED, like errlog.Secret, so that no log line or error message can
// carry it by accident; convert it with string(t) where the value itself
// is needed.
type Token string

// LogValue implements slog.LogValuer.
func (t Token) LogValue() slog.Value { return errlog.Secret(t).LogValue() }

// String implements fmt.Stringer so that %v and %s do not leak it either.
func (t Token) String() string { return errlog.Secret(t).String() }

// GoString implements fmt.GoStringer for %#v.
func (t Token) GoString() string { return errlog.Secret(t).GoString() }

// Claims are the claims of a token made with [Sign]. A zero field is left
// out of the token, which is how tests build tokens without exp or sub.
type Claims struct {
	Subject   string
	Issuer    string
	Audience  []string
	Expiry    time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	ID        string
	Extra     map[string]any // private claims
}

// Sign returns a token with the claims c, signed with key under alg: the
// issuing helper for tests, examples and development tools. key is a
// private key of the algorithm's type (a []byte for HMAC), or a jwk.Key,
// whose key ID then goes into the token's header for key-set verifiers.
func Sign(alg jwa.SignatureAlgorithm, key any, c Claims) (Token, error) {
	b := jwt.NewBuilder()
	if c.Subject != "" {
		b.Subject(c.Subject)
	}
	if c.Issuer != "" {
		b.Issuer(c.Issuer)
	}
	if len(c.Audience) > 0 {
		b.Audience(c.Audience)
	}
	if !c.Expiry.IsZero() {
		b.Expiration(c.Expiry)
	}
	if !c.NotBefore.IsZero() {
		b.NotBefore(c.NotBefore)
	}
	if !c.IssuedAt.IsZero() {
		b.IssuedAt(c.IssuedAt)
	}
	if c.ID != "" {
		b.JwtID(c.ID)
	}
	for k, v := range c.Extra {
		b.Claim(k, v)
	}
	t, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	s, err := jwt.Sign(t, jwt.WithKey(alg, key))
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return Token(s), nil
}
