package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// clock is a settable clock for verifiers.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// outcome is what a caller of Verify learns: accepted, or refused with a
// code and a public text.
func outcome(p *auth.Principal, err error) string {
	if err != nil {
		return fmt.Sprintf("refused %v %q", errlog.CodeOf(err), errlog.TextOf(err))
	}
	return "accepted " + p.Subject
}

// answeredFromCache verifies tok and reports whether v answered from its
// cache, leaving the entry of an earlier verification in place.
func answeredFromCache(v *auth.Verifier, tok auth.Token) bool {
	before := auth.CachedPrincipal(v, tok)
	_, err := v.Verify(context.Background(), tok)
	return err == nil && before != nil && auth.CachedPrincipal(v, tok) == before
}

func TestVerifiedCacheOnByDefault(t *testing.T) {
	t.Parallel()
	tok := mint(t, valid("alice", time.Hour))
	ctx := context.Background()
	cached := hsVerifier(t)
	uncached := hsVerifier(t, auth.WithVerifiedCache(0))
	p1 := must(cached.Verify(ctx, tok))
	if !answeredFromCache(cached, tok) {
		t.Error("the default verifier verified a known token again instead of answering from its cache")
	}
	if p2 := must(cached.Verify(ctx, tok)); p1 == p2 || p1 == auth.CachedPrincipal(cached, tok) {
		t.Error("callers share a principal")
	}
	q1 := must(uncached.Verify(ctx, tok))
	if auth.CachedPrincipal(uncached, tok) != nil {
		t.Error("WithVerifiedCache(0) still caches")
	}
	if p1.Subject != q1.Subject || !p1.Expiry.Equal(q1.Expiry) || p1.TokenID != q1.TokenID {
		t.Errorf("cached principal %+v differs from a fresh one %+v", p1, q1)
	}
}

// TestVerifiedCacheTimeClaims checks, at each instant of a token's life
// and around it, that a verifier answering from its cache (the token was
// verified at issue time) answers exactly as one that verifies in full:
// the time claims are the only ones that change, and a hit must check
// them again.
func TestVerifiedCacheTimeClaims(t *testing.T) {
	t.Parallel()
	issued := time.Unix(1_900_000_000, 0)
	exp := issued.Add(time.Minute)
	nbf := issued.Add(10 * time.Second)
	lw := auth.DefaultLeeway
	tok := mint(t, auth.Claims{Subject: "alice", IssuedAt: issued, NotBefore: nbf, Expiry: exp, ID: "t-1"})
	tests := []struct {
		name string
		at   time.Time
		want string // "" to compare only
	}{
		{"long before nbf", nbf.Add(-time.Hour), "refused unauthenticated \"invalid token\""},
		{"just before nbf - leeway", nbf.Add(-lw - time.Nanosecond), "refused unauthenticated \"invalid token\""},
		{"at nbf - leeway", nbf.Add(-lw), "accepted alice"},
		{"at nbf", nbf, "accepted alice"},
		{"before exp", exp.Add(-time.Second), "accepted alice"},
		{"at exp, within the leeway", exp, "accepted alice"},
		{"just before exp + leeway", exp.Add(lw - time.Nanosecond), "accepted alice"},
		{"at exp + leeway", exp.Add(lw), "refused unauthenticated \"token expired\""},
		{"long after exp", exp.Add(time.Hour), "refused unauthenticated \"token expired\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := newClock(nbf)
			cached := hsVerifier(t, auth.WithVerifierClock(clk.now))
			fresh := hsVerifier(t, auth.WithVerifierClock(clk.now), auth.WithVerifiedCache(0))
			if _, err := cached.Verify(ctx, tok); err != nil {
				t.Fatalf("at nbf: %v", err)
			}
			clk.set(tt.at)
			// Twice: a refusal must not be cached either.
			for range 2 {
				got, want := outcome(cached.Verify(ctx, tok)), outcome(fresh.Verify(ctx, tok))
				if got != want || got != tt.want {
					t.Fatalf("cached verifier: %s; fresh verifier: %s; want %s", got, want, tt.want)
				}
			}
			// Back to a valid instant: a refusal dropped the entry, and the
			// token is verified in full, not refused for good.
			clk.set(nbf)
			if _, err := cached.Verify(ctx, tok); err != nil {
				t.Fatalf("valid again: %v", err)
			}
		})
	}
}

func TestVerifiedCacheExpiredTokenRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	clk := newClock(now)
	v := hsVerifier(t, auth.WithVerifierClock(clk.now), auth.WithLeeway(time.Second))
	tok := mint(t, auth.Claims{Subject: "alice", Expiry: now.Add(time.Minute)})
	must(v.Verify(ctx, tok))
	if !answeredFromCache(v, tok) {
		t.Fatal("second verification was not a cache hit")
	}
	clk.set(now.Add(time.Minute + time.Second))
	_, err := v.Verify(ctx, tok)
	checkRefused(t, err, tok, "token expired", "expired")
}

// TestVerifiedCachePrincipalsShareNothing changes everything a caller can
// reach of a principal answered from the cache: the next caller presenting
// the same token gets the token's claims all the same.
func TestVerifiedCachePrincipalsShareNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := hsVerifier(t)
	c := valid("alice", time.Hour)
	c.Issuer, c.Audience = "https://id.example", []string{"chat", "mail"}
	c.Extra = map[string]any{"scope": "read", "roles": []any{"user", []any{"a"}}, "profile": map[string]any{"name": "Alice"}}
	tok := mint(t, c)
	want := fmt.Sprintf("%+v", *must(v.Verify(ctx, tok)))
	for i := range 3 {
		p := must(v.Verify(ctx, tok))
		if got := fmt.Sprintf("%+v", *p); got != want {
			t.Fatalf("verification %d: principal %s, want %s", i, got, want)
		}
		p.Subject, p.Issuer, p.TokenID, p.Expiry = "root", "evil", "x", p.Expiry.Add(time.Hour)
		p.Audience[0] = "admin"
		p.Audience = append(p.Audience, "root")
		p.Claims["scope"] = "admin"
		p.Claims["added"] = true
		p.Claims["roles"].([]any)[0] = "admin"
		p.Claims["roles"].([]any)[1].([]any)[0] = "b"
		p.Claims["profile"].(map[string]any)["name"] = "Mallory"
	}
}

// TestVerifiedCacheForgedSignature checks that a token with the claims
// of a cached one but another signature is verified, and refused: the
// cache is keyed by the whole token.
func TestVerifiedCacheForgedSignature(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := hsVerifier(t)
	claims := valid("alice", time.Hour)
	good := mint(t, claims)
	forged := must(auth.Sign(jwa.HS256(), []byte("another-secret-of-32-bytes-long!"), claims))
	goodParts, forgedParts := strings.Split(string(good), "."), strings.Split(string(forged), ".")
	if goodParts[0] != forgedParts[0] || goodParts[1] != forgedParts[1] || goodParts[2] == forgedParts[2] {
		t.Fatal("the forgery should differ from the good token in its signature only")
	}
	garbled := auth.Token(goodParts[0] + "." + goodParts[1] + "." + goodParts[2][:len(goodParts[2])-4] + "AAAA")
	for range 3 {
		if _, err := v.Verify(ctx, good); err != nil {
			t.Fatalf("good token: %v", err)
		}
		for _, bad := range []auth.Token{forged, garbled} {
			_, err := v.Verify(ctx, bad)
			checkRefused(t, err, bad, "invalid token", "bad signature")
		}
	}
}

// TestVerifiedCacheRevocation checks that a token answered from the cache
// is still checked against the revoker at every handshake.
func TestVerifiedCacheRevocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		revoke func(m *auth.MemoryRevoker, p *auth.Principal)
	}{
		{"token id", func(m *auth.MemoryRevoker, p *auth.Principal) {
			m.RevokeToken(p.TokenID, p.Expiry.Add(auth.DefaultLeeway))
		}},
		{"subject", func(m *auth.MemoryRevoker, p *auth.Principal) { m.RevokeSubject(p.Subject) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := hsVerifier(t)
			rev := auth.NewMemoryRevoker()
			h := wsguard.Instrument(logTo(&wstest.Logs{}), nil)(auth.Middleware(v, auth.WithRevoker(rev, 0))(probe))
			tok := mint(t, valid("alice", time.Hour))
			handshake := func() (int, string) {
				r := httptest.NewRequest(http.MethodGet, "/ws", nil)
				r.Header.Set("Authorization", "Bearer "+string(tok))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Code, w.Body.String()
			}
			for range 2 {
				if code, body := handshake(); code != http.StatusOK {
					t.Fatalf("before revocation: %d %q", code, body)
				}
			}
			p := must(v.Verify(context.Background(), tok))
			if !answeredFromCache(v, tok) {
				t.Fatal("the token is not answered from the cache")
			}
			tt.revoke(rev, p)
			for range 2 {
				if code, body := handshake(); code != http.StatusUnauthorized || body != "invalid token" {
					t.Fatalf("after revocation: %d %q, want 401 \"invalid token\"", code, body)
				}
			}
		})
	}
}

// TestVerifiedCacheKeyRotation checks that a cached key-set token is
// verified again, and refused, once its kid names another key.
func TestVerifiedCacheKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	privA, pubA := rsaJWK(t, "a", jwa.RS256())
	set := jwk.NewSet()
	if err := set.AddKey(pubA); err != nil {
		t.Fatal(err)
	}
	v := must(auth.NewKeySetVerifier(set))
	tok := must(auth.Sign(jwa.RS256(), privA, valid("alice", time.Minute)))
	must(v.Verify(ctx, tok))
	if !answeredFromCache(v, tok) {
		t.Fatal("the key-set token is not answered from the cache")
	}
	other := must(jwk.Import([]byte("rotated-hmac-key-of-32-bytes!!!!")))
	for k, val := range map[string]any{jwk.KeyIDKey: "a", jwk.AlgorithmKey: jwa.HS256()} {
		if err := other.Set(k, val); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.RemoveKey(pubA); err != nil {
		t.Fatal(err)
	}
	if err := set.AddKey(other); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(ctx, tok)
	checkRefused(t, err, tok, "invalid token", "")
}

// TestVerifiedCacheConcurrent verifies good and forged tokens from many
// goroutines through a cache too small for them, so that entries are
// added, hit and evicted at once (run with -race).
func TestVerifiedCacheConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := hsVerifier(t, auth.WithVerifiedCache(4))
	var good, forged []auth.Token
	for i := range 12 {
		c := valid(fmt.Sprintf("user-%d", i), time.Hour)
		good = append(good, mint(t, c))
		forged = append(forged, must(auth.Sign(jwa.HS256(), []byte("another-secret-of-32-bytes-long!"), c)))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g*7 + i) % len(good)
				p, err := v.Verify(ctx, good[k])
				if err != nil || p.Subject != fmt.Sprintf("user-%d", k) {
					t.Errorf("good token %d: %v, %v", k, p, err)
					return
				}
				if _, err := v.Verify(ctx, forged[k]); err == nil {
					t.Errorf("forged token %d accepted", k)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkVerify measures one verification of a known token, in full
// and from the verified-token cache.
func BenchmarkVerify(b *testing.B) {
	ec := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	_, ed := must2(ed25519.GenerateKey(rand.Reader))
	for _, alg := range []struct {
		alg  jwa.SignatureAlgorithm
		key  any
		sign any
	}{
		{jwa.HS256(), secret, secret},
		{jwa.ES256(), &ec.PublicKey, ec},
		{jwa.EdDSA(), ed.Public(), ed},
	} {
		tok := must(auth.Sign(alg.alg, alg.sign, valid("alice", time.Hour)))
		for _, cache := range []int{0, auth.DefaultVerifiedCacheSize} {
			b.Run(fmt.Sprintf("%s/cache=%d", alg.alg, cache), func(b *testing.B) {
				v := must(auth.NewVerifier(alg.alg, alg.key, auth.WithVerifiedCache(cache)))
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
