package auth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
)

// rsaKey is generated once: 2048-bit generation is slow.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// checkRefused checks that err is an Unauthenticated error with the given
// public text whose detail names reason and never contains tok.
func checkRefused(t *testing.T, err error, tok auth.Token, text, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want refused with %q (%s)", text, reason)
	}
	if c := errlog.CodeOf(err); c != errlog.Unauthenticated {
		t.Errorf("code = %v, want unauthenticated (err %v)", c, err)
	}
	if got := errlog.TextOf(err); got != text {
		t.Errorf("public text = %q, want %q (err %v)", got, text, err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("detail %q does not name the reason %q", err.Error(), reason)
	}
	if tok != "" && strings.Contains(err.Error(), string(tok)) {
		t.Errorf("error detail contains the token: %v", err)
	}
}

func TestVerifyStrictProfile(t *testing.T) {
	t.Parallel()
	now := time.Now()
	good := auth.Claims{Subject: "alice", Expiry: now.Add(time.Hour), IssuedAt: now, ID: "t-1",
		Extra: map[string]any{"scope": "chat"}}
	with := func(f func(*auth.Claims)) auth.Claims {
		c := good
		f(&c)
		return c
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey().PublicKey))})
	rsaVerifier := must(auth.NewVerifier(jwa.RS256(), &rsaKey().PublicKey))

	tests := []struct {
		name   string
		v      *auth.Verifier // nil: HS256 with secret and opts
		opts   []auth.VerifierOption
		tok    func(t *testing.T) auth.Token
		text   string // "" when the token is valid
		reason string
	}{
		{name: "valid", tok: func(t *testing.T) auth.Token { return mint(t, good) }},
		{name: "expired within the leeway", tok: func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Expiry = now.Add(-2 * time.Second) }))
		}},
		{name: "expired", text: "token expired", reason: "expired", tok: func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Expiry = now.Add(-time.Minute) }))
		}},
		{name: "expired past a smaller leeway", opts: []auth.VerifierOption{auth.WithLeeway(time.Second)},
			text: "token expired", reason: "expired", tok: func(t *testing.T) auth.Token {
				return mint(t, with(func(c *auth.Claims) { c.Expiry = now.Add(-3 * time.Second) }))
			}},
		{name: "bad signature", text: "invalid token", reason: "bad signature", tok: func(t *testing.T) auth.Token {
			tok, err := auth.Sign(jwa.HS256(), []byte("another-secret-of-32-bytes-long!"), good)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{name: "tampered payload", text: "invalid token", reason: "bad signature", tok: func(t *testing.T) auth.Token {
			parts := strings.Split(string(mint(t, good)), ".")
			evil := strings.Split(string(mint(t, with(func(c *auth.Claims) { c.Subject = "root" }))), ".")
			return auth.Token(parts[0] + "." + evil[1] + "." + parts[2])
		}},
		{name: "alg none", text: "invalid token", reason: "unsigned token", tok: func(*testing.T) auth.Token {
			return handmade(`{"alg":"none","typ":"JWT"}`, `{"sub":"alice","exp":4102444800}`, "")
		}},
		{name: "alg None with a signature", text: "invalid token", reason: "unsigned token", tok: func(*testing.T) auth.Token {
			return handmade(`{"alg":"None"}`, `{"sub":"alice","exp":4102444800}`, "sig")
		}},
		{name: "another algorithm", text: "invalid token", reason: "algorithm not allowed", tok: func(t *testing.T) auth.Token {
			tok, err := auth.Sign(jwa.HS384(), append(secret, secret[:16]...), good)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{name: "HS256 signed with the RSA public key", v: rsaVerifier, text: "invalid token", reason: "algorithm not allowed",
			tok: func(t *testing.T) auth.Token {
				tok, err := auth.Sign(jwa.HS256(), pubPEM, good)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}},
		{name: "no exp", text: "invalid token", reason: "missing claim", tok: func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Expiry = time.Time{} }))
		}},
		{name: "no sub", text: "invalid token", reason: "missing claim", tok: func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Subject = "" }))
		}},
		{name: "empty sub", text: "invalid token", reason: "empty subject", tok: func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Subject = ""; c.Extra = map[string]any{"sub": ""} }))
		}},
		{name: "not yet valid", text: "invalid token", reason: "not yet valid", tok: func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.NotBefore = now.Add(time.Minute) }))
		}},
		{name: "nbf within the leeway", tok: func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.NotBefore = now.Add(2 * time.Second) }))
		}},
		{name: "issued in the future", text: "invalid token", reason: "issued in the future", tok: func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.IssuedAt = now.Add(time.Minute) }))
		}},
		{name: "empty", text: "invalid token", reason: "no token", tok: func(*testing.T) auth.Token { return "" }},
		{name: "oversized", text: "invalid token", reason: "token too large", tok: func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Extra = map[string]any{"pad": strings.Repeat("x", 8<<10)} }))
		}},
		{name: "over a smaller cap", opts: []auth.VerifierOption{auth.WithMaxTokenSize(64)},
			text: "invalid token", reason: "token too large", tok: func(t *testing.T) auth.Token { return mint(t, good) }},
		{name: "two parts", text: "invalid token", reason: "malformed token", tok: func(t *testing.T) auth.Token {
			s := string(mint(t, good))
			return auth.Token(s[:strings.LastIndex(s, ".")])
		}},
		{name: "JSON serialization", text: "invalid token", reason: "malformed token", tok: func(t *testing.T) auth.Token {
			p := strings.Split(string(mint(t, good)), ".")
			return auth.Token(`{"payload":"` + p[1] + `","protected":"` + p[0] + `","signature":"` + p[2] + `"}`)
		}},
		{name: "padded base64", text: "invalid token", reason: "malformed token", tok: func(t *testing.T) auth.Token {
			p := strings.Split(string(mint(t, good)), ".")
			return auth.Token(p[0] + "." + p[1] + "==." + p[2])
		}},
		{name: "header not JSON", text: "invalid token", reason: "malformed token", tok: func(*testing.T) auth.Token {
			return handmade(`alg=HS256`, `{}`, "sig")
		}},
		{name: "payload not JSON", text: "invalid token", reason: "bad signature", tok: func(*testing.T) auth.Token {
			return handmade(`{"alg":"HS256"}`, `not json`, "sig")
		}},
		{name: "signed claims as written", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"alice","exp":4102444800.5,"aud":"chat"}`)
		}},
		{name: "duplicate claim", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":"alice","sub":"root","exp":4102444800}`)
		}},
		{name: "claim names differing in case", text: "invalid token", reason: "missing claim", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"SUB":"root","exp":4102444800}`)
		}},
		{name: "exp as a string", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":"alice","exp":"4102444800"}`)
		}},
		{name: "exp past the year 9999", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":"alice","exp":1e300}`)
		}},
		{name: "negative exp", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":"alice","exp":-1}`)
		}},
		{name: "null sub", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":null,"exp":4102444800}`)
		}},
		{name: "null iat", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":"alice","exp":4102444800,"iat":null}`)
		}},
		{name: "null audience", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":"alice","exp":4102444800,"aud":null}`)
		}},
		{name: "null among the audiences", opts: []auth.VerifierOption{auth.WithAudience("chat")},
			text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
				return signed(`{"alg":"HS256"}`, `{"sub":"alice","exp":4102444800,"aud":["chat",null]}`)
			}},
		{name: "audience not a string", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":"alice","exp":4102444800,"aud":["chat",7]}`)
		}},
		{name: "negative fractional exp", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":"alice","exp":-0.5}`)
		}},
		{name: "sub not a string", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `{"sub":7,"exp":4102444800}`)
		}},
		{name: "payload not an object", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, `["alice"]`)
		}},
		{name: "invalid UTF-8 in a claim", text: "invalid token", reason: "malformed claims", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256"}`, "{\"sub\":\"al\xffice\",\"exp\":4102444800}")
		}},
		{name: "duplicate alg", text: "invalid token", reason: "malformed token", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"none","alg":"HS256"}`, `{"sub":"alice","exp":4102444800}`)
		}},
		{name: "crit header", text: "invalid token", reason: "malformed token", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256","crit":["exp"],"exp":1}`, `{"sub":"alice","exp":4102444800}`)
		}},
		{name: "unencoded payload header", text: "invalid token", reason: "malformed token", tok: func(*testing.T) auth.Token {
			return signed(`{"alg":"HS256","b64":false}`, `{"sub":"alice","exp":4102444800}`)
		}},
		{name: "line feed in the header", text: "invalid token", reason: "malformed token", tok: func(t *testing.T) auth.Token {
			s := string(mint(t, good))
			return auth.Token(s[:4] + "\n" + s[4:])
		}},
		{name: "carriage return in the payload", text: "invalid token", reason: "malformed token", tok: func(t *testing.T) auth.Token {
			p := strings.Split(string(mint(t, good)), ".")
			return auth.Token(p[0] + "." + p[1][:4] + "\r" + p[1][4:] + "." + p[2])
		}},
		{name: "standard base64 alphabet", text: "invalid token", reason: "malformed token", tok: func(t *testing.T) auth.Token {
			p := strings.Split(string(mint(t, good)), ".")
			return auth.Token(p[0] + "." + p[1] + ".+" + p[2])
		}},
		{name: "non-canonical signature encoding", text: "invalid token", reason: "malformed token", tok: func(t *testing.T) auth.Token {
			// An HS256 signature is 32 bytes: 43 characters, the last of
			// which carries 2 unused bits. Flipping one is another encoding
			// of the same bytes, which the strict decoder refuses.
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			s := string(mint(t, good))
			last := strings.IndexByte(alphabet, s[len(s)-1])
			return auth.Token(s[:len(s)-1] + alphabet[last^1:last^1+1])
		}},
		{name: "wrong issuer", opts: []auth.VerifierOption{auth.WithIssuer("https://id.example")},
			text: "invalid token", reason: "wrong issuer", tok: func(t *testing.T) auth.Token {
				return mint(t, with(func(c *auth.Claims) { c.Issuer = "https://evil.example" }))
			}},
		{name: "no issuer when one is required", opts: []auth.VerifierOption{auth.WithIssuer("https://id.example")},
			text: "invalid token", reason: "wrong issuer", tok: func(t *testing.T) auth.Token { return mint(t, good) }},
		{name: "right issuer and audience",
			opts: []auth.VerifierOption{auth.WithIssuer("https://id.example"), auth.WithAudience("chat")},
			tok: func(t *testing.T) auth.Token {
				return mint(t, with(func(c *auth.Claims) { c.Issuer = "https://id.example"; c.Audience = []string{"mail", "chat"} }))
			}},
		{name: "wrong audience", opts: []auth.VerifierOption{auth.WithAudience("chat")},
			text: "invalid token", reason: "wrong audience", tok: func(t *testing.T) auth.Token {
				return mint(t, with(func(c *auth.Claims) { c.Audience = []string{"mail"} }))
			}},
		{name: "missing required claim", opts: []auth.VerifierOption{auth.WithRequiredClaims("tenant")},
			text: "invalid token", reason: "missing claim", tok: func(t *testing.T) auth.Token { return mint(t, good) }},
		{name: "lifetime over the maximum", opts: []auth.VerifierOption{auth.WithMaxLifetime(10 * time.Minute)},
			text: "invalid token", reason: "invalid claims", tok: func(t *testing.T) auth.Token { return mint(t, good) }},
		{name: "lifetime without iat", opts: []auth.VerifierOption{auth.WithMaxLifetime(10 * time.Minute)},
			text: "invalid token", reason: "missing claim", tok: func(t *testing.T) auth.Token {
				return mint(t, with(func(c *auth.Claims) { c.IssuedAt = time.Time{}; c.Expiry = now.Add(time.Minute) }))
			}},
		{name: "lifetime within the maximum", opts: []auth.VerifierOption{auth.WithMaxLifetime(10 * time.Minute)},
			tok: func(t *testing.T) auth.Token {
				return mint(t, with(func(c *auth.Claims) { c.Expiry = now.Add(5 * time.Minute) }))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := tt.v
			if v == nil {
				v = hsVerifier(t, append([]auth.VerifierOption{auth.WithVerifierClock(func() time.Time { return now })}, tt.opts...)...)
			}
			tok := tt.tok(t)
			p, err := v.Verify(context.Background(), tok)
			if tt.text == "" {
				if err != nil {
					t.Fatalf("refused a valid token: %v", err)
				}
				if p.Subject != "alice" {
					t.Fatalf("principal = %+v", p)
				}
				return
			}
			checkRefused(t, err, tok, tt.text, tt.reason)
		})
	}
}

func TestPrincipalFields(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	tok := mint(t, auth.Claims{Subject: "alice", Issuer: "iss", Audience: []string{"chat"}, Expiry: now.Add(time.Hour),
		IssuedAt: now, ID: "jti-1", Extra: map[string]any{"scope": "read", "n": 2}})
	p, err := hsVerifier(t).Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "alice" || p.Issuer != "iss" || len(p.Audience) != 1 || p.Audience[0] != "chat" ||
		!p.Expiry.Equal(now.Add(time.Hour)) || !p.IssuedAt.Equal(now) || p.TokenID != "jti-1" {
		t.Fatalf("principal = %+v", p)
	}
	if len(p.Claims) != 2 || p.Claims["scope"] != "read" || p.Claims["n"] != float64(2) {
		t.Fatalf("claims = %v, want the private claims only", p.Claims)
	}
}

func TestVerifierKeyTypes(t *testing.T) {
	t.Parallel()
	ec256 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	ec384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	edPub, edPriv := must2(ed25519.GenerateKey(rand.Reader))
	tests := []struct {
		name string
		alg  jwa.SignatureAlgorithm
		sign any
		key  any
	}{
		{"HS256", jwa.HS256(), secret, secret},
		{"HS384", jwa.HS384(), []byte(strings.Repeat("k", 48)), []byte(strings.Repeat("k", 48))},
		{"HS512", jwa.HS512(), []byte(strings.Repeat("k", 64)), []byte(strings.Repeat("k", 64))},
		{"RS256 public key", jwa.RS256(), rsaKey(), &rsaKey().PublicKey},
		{"PS256 private key", jwa.PS256(), rsaKey(), rsaKey()},
		{"ES256", jwa.ES256(), ec256, &ec256.PublicKey},
		{"ES384", jwa.ES384(), ec384, &ec384.PublicKey},
		{"EdDSA", jwa.EdDSA(), edPriv, edPub},
		{"Ed25519", jwa.EdDSAEd25519(), edPriv, edPriv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.NewVerifier(tt.alg, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := auth.Sign(tt.alg, tt.sign, valid("alice", time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// TestHMACVerifierUnderLoad checks the pooled HMACs: goroutines verifying
// good and forged tokens at once each get their own answer, and the key is
// the one given to NewVerifier even when the caller reuses its slice.
func TestHMACVerifierUnderLoad(t *testing.T) {
	t.Parallel()
	key := bytes.Clone(secret)
	v := must(auth.NewVerifier(jwa.HS256(), key, auth.WithVerifiedCache(0)))
	good := must(auth.Sign(jwa.HS256(), secret, valid("alice", time.Minute)))
	forged := must(auth.Sign(jwa.HS256(), bytes.Repeat([]byte("x"), 32), valid("mallory", time.Minute)))
	clear(key)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				if _, err := v.Verify(context.Background(), good); err != nil {
					t.Errorf("worker %d: good token: %v", i, err)
					return
				}
				if _, err := v.Verify(context.Background(), forged); err == nil {
					t.Errorf("worker %d: forged token accepted", i)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewVerifierRefusesWeakKeys(t *testing.T) {
	t.Parallel()
	small := must(rsa.GenerateKey(rand.Reader, 1024))
	ec384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	tests := []struct {
		name string
		alg  jwa.SignatureAlgorithm
		key  any
		opts []auth.VerifierOption
		want string
	}{
		{"short HMAC key", jwa.HS256(), secret[:31], nil, "at least 32 bytes"},
		{"HS512 with a 32-byte key", jwa.HS512(), secret, nil, "at least 64 bytes"},
		{"HMAC key as a string", jwa.HS256(), string(secret), nil, "[]byte"},
		{"1024-bit RSA", jwa.RS256(), &small.PublicKey, nil, "at least 2048 bits"},
		{"RSA key for HS256", jwa.HS256(), &rsaKey().PublicKey, nil, "[]byte"},
		{"HMAC key for RS256", jwa.RS256(), secret, nil, "RSA key"},
		{"P-384 key for ES256", jwa.ES256(), &ec384.PublicKey, nil, "P-256"},
		{"RSA key for EdDSA", jwa.EdDSA(), rsaKey(), nil, "Ed25519"},
		{"short Ed25519 public key", jwa.EdDSA(), ed25519.PublicKey(secret[:31]), nil, "standard size"},
		{"short Ed25519 private key", jwa.EdDSA(), ed25519.PrivateKey(secret), nil, "standard size"},
		{"alg none", jwa.NoSignature(), nil, nil, "not supported"},
		{"JWKS option", jwa.HS256(), secret, []auth.VerifierOption{auth.WithJWKSFetchTimeout(time.Second)}, "NewJWKSVerifier only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.NewVerifier(tt.alg, tt.key, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// rsaJWK returns the public JWK of rsaKey with the given kid and alg.
func rsaJWK(t *testing.T, kid string, alg jwa.SignatureAlgorithm) (priv, pub jwk.Key) {
	t.Helper()
	priv = must(jwk.Import(rsaKey()))
	for _, k := range []jwk.Key{priv} {
		if err := k.Set(jwk.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
		if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
			t.Fatal(err)
		}
	}
	pub = must(priv.PublicKey())
	return priv, pub
}

func TestKeySetVerifier(t *testing.T) {
	t.Parallel()
	privA, pubA := rsaJWK(t, "a", jwa.RS256())
	set := jwk.NewSet()
	if err := set.AddKey(pubA); err != nil {
		t.Fatal(err)
	}
	v := must(auth.NewKeySetVerifier(set))
	good := must(auth.Sign(jwa.RS256(), privA, valid("alice", time.Minute)))
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	_, pubB := rsaJWK(t, "b", jwa.RS256())
	noKid := must(auth.Sign(jwa.RS256(), rsaKey(), valid("alice", time.Minute)))
	_, err := v.Verify(context.Background(), noKid)
	checkRefused(t, err, noKid, "invalid token", "no kid")

	privC, _ := rsaJWK(t, "c", jwa.RS256())
	unknown := must(auth.Sign(jwa.RS256(), privC, valid("alice", time.Minute)))
	_, err = v.Verify(context.Background(), unknown)
	checkRefused(t, err, unknown, "invalid token", "unknown kid")

	privPS, _ := rsaJWK(t, "a", jwa.PS256())
	otherAlg := must(auth.Sign(jwa.PS256(), privPS, valid("alice", time.Minute)))
	_, err = v.Verify(context.Background(), otherAlg)
	checkRefused(t, err, otherAlg, "invalid token", "bad signature")

	// HS/RS confusion: an HMAC over the public key, naming the RSA key.
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey().PublicKey))})
	hmacKey := must(jwk.Import(pubPEM))
	_ = hmacKey.Set(jwk.KeyIDKey, "a")
	confused := must(auth.Sign(jwa.HS256(), hmacKey, valid("alice", time.Minute)))
	_, err = v.Verify(context.Background(), confused)
	checkRefused(t, err, confused, "invalid token", "bad signature")

	// A header that lists an extension (RFC 7515 section 4.1.11): refused
	// for key sets too, although jws.Verify by default ignores "crit".
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.CriticalKey, []string{"urn:example:ext"})
	_ = hdr.Set("urn:example:ext", true)
	claims := fmt.Sprintf(`{"sub":"alice","exp":%d}`, time.Now().Add(time.Minute).Unix())
	crit := auth.Token(must(jws.Sign([]byte(claims), jws.WithKey(jwa.RS256(), privA, jws.WithProtectedHeaders(hdr)))))
	if _, err := jws.Verify([]byte(crit), jws.WithKeySet(set)); err != nil {
		t.Fatalf("jws.Verify refuses the crit token itself (%v): this case no longer shows anything", err)
	}
	_, err = v.Verify(context.Background(), crit)
	checkRefused(t, err, crit, "invalid token", "malformed token")

	// The header's alg must be the key's: jws.Verify would otherwise verify
	// under the key's algorithm whatever the header says.
	oct := must(jwk.Import(secret))
	_ = oct.Set(jwk.KeyIDKey, "k1")
	_ = oct.Set(jwk.AlgorithmKey, jwa.HS256())
	octSet := jwk.NewSet()
	_ = octSet.AddKey(oct)
	hv := must(auth.NewKeySetVerifier(octSet))
	if _, err := hv.Verify(context.Background(), signed(`{"alg":"HS256","kid":"k1"}`, claims)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, alg := range []string{"HS512", "RS256"} {
		tok := signed(`{"alg":"`+alg+`","kid":"k1"}`, claims)
		_, err = hv.Verify(context.Background(), tok)
		checkRefused(t, err, tok, "invalid token", "bad signature")
	}

	// One spelling per token: another encoding of the same signature bytes
	// (an RS256 signature is 256 bytes, so its last character carries 4
	// unused bits) is refused, though jws would decode it.
	p := strings.Split(string(good), ".")
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, p[2][len(p[2])-1])
	respelled := auth.Token(p[0] + "." + p[1] + "." + p[2][:len(p[2])-1] + alphabet[last^1:last^1+1])
	_, err = v.Verify(context.Background(), respelled)
	checkRefused(t, err, respelled, "invalid token", "malformed token")

	noAlg := must(jwk.Import(&rsaKey().PublicKey))
	_ = noAlg.Set(jwk.KeyIDKey, "x")
	for name, keys := range map[string][]jwk.Key{"empty": nil, "key without alg": {pubB, noAlg}} {
		s := jwk.NewSet()
		for _, k := range keys {
			_ = s.AddKey(k)
		}
		if _, err := auth.NewKeySetVerifier(s); err == nil {
			t.Errorf("%s: NewKeySetVerifier accepted it", name)
		}
	}
}

func TestTokenIsRedacted(t *testing.T) {
	t.Parallel()
	tok := mint(t, valid("alice", time.Minute))
	logs := &wstest.Logs{}
	logTo(logs).Info("x", "t", tok)
	for _, s := range []string{logs.String(), tok.String(), tok.GoString()} {
		if strings.Contains(s, string(tok)) || !strings.Contains(s, "REDACTED") {
			t.Errorf("%q is not redacted", s)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// TestSubjectClaim verifies tokens that carry the subject in another
// claim, as tutorials mint them: strings and integers, however large, are
// subjects; any other value is refused with a log detail saying why.
func TestSubjectClaim(t *testing.T) {
	t.Parallel()
	header := `{"alg":"HS256","typ":"JWT"}`
	exp := fmt.Sprint(time.Now().Add(time.Hour).Unix())
	tests := []struct {
		name    string
		claim   string // "" for the default
		payload string // without exp, which is added
		sub     string // the subject, when accepted
		reason  string // else the log detail
	}{
		{"integer", "user_id", `"user_id":42`, "42", ""},
		{"string", "user_id", `"user_id":"u-7"`, "u-7", ""},
		{"negative integer", "user_id", `"user_id":-7`, "-7", ""},
		{"minus zero", "user_id", `"user_id":-0`, "0", ""},
		{"integer past 2^53", "user_id", `"user_id":9007199254740993`, "9007199254740993", ""},
		{"integer past int64", "user_id", `"user_id":123456789012345678901234567890`, "123456789012345678901234567890", ""},
		{"sub beside it is not the subject", "user_id", `"sub":"alice","user_id":42`, "42", ""},
		{"sub", "sub", `"sub":"alice"`, "alice", ""},
		{"fraction", "user_id", `"user_id":42.5`, "", `"user_id" is "42.5": the subject must be a string or an integer, not a number with a fraction or exponent`},
		{"integral float", "user_id", `"user_id":42.0`, "", "not a number with a fraction or exponent"},
		{"exponent", "user_id", `"user_id":4.2e1`, "", "not a number with a fraction or exponent"},
		{"boolean", "user_id", `"user_id":true`, "", `"user_id" is a boolean`},
		{"object", "user_id", `"user_id":{"id":42}`, "", `"user_id" is an object`},
		{"array", "user_id", `"user_id":[42]`, "", `"user_id" is an array`},
		{"null", "user_id", `"user_id":null`, "", `"user_id" is null`},
		{"empty string", "user_id", `"user_id":""`, "", "empty subject"},
		{"missing", "user_id", `"sub":"alice"`, "", `"user_id" is required`},
		{"sub still a string", "user_id", `"sub":1,"user_id":42`, "", "malformed claims"},
		{"duplicate", "user_id", `"user_id":1,"user_id":2`, "", "malformed claims"},
		{"default needs sub", "", `"user_id":42`, "", `"sub" is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []auth.VerifierOption
			if tt.claim != "" {
				opts = append(opts, auth.WithSubjectClaim(tt.claim))
			}
			tok := signed(header, `{`+tt.payload+`,"exp":`+exp+`}`)
			p, err := hsVerifier(t, opts...).Verify(context.Background(), tok)
			if tt.reason == "" {
				if err != nil || p.Subject != tt.sub {
					t.Fatalf("Verify = %+v, %v, want subject %q", p, err, tt.sub)
				}
				return
			}
			checkRefused(t, err, tok, "invalid token", tt.reason)
		})
	}
	for _, name := range []string{"", "exp", "iss", "aud", "nbf", "iat", "jti"} {
		if _, err := auth.NewVerifier(jwa.HS256(), secret, auth.WithSubjectClaim(name)); err == nil ||
			!strings.Contains(err.Error(), "WithSubjectClaim") {
			t.Errorf("WithSubjectClaim(%q): err = %v, want a refusal naming the option", name, err)
		}
	}
}

// algKeys is one supported algorithm with its key pair and another key
// pair of the same kind, for the wrong-key case.
type algKeys struct {
	alg               jwa.SignatureAlgorithm
	priv, pub, other  any
	publicKeyAsSecret []byte // the public key's bytes, as an attacker would try them as an HMAC secret
}

// algorithmKeys returns every algorithm family with keys, made once.
var algorithmKeys = sync.OnceValue(func() []algKeys {
	rsa2 := must(rsa.GenerateKey(rand.Reader, 2048))
	ec := func(c elliptic.Curve) (*ecdsa.PrivateKey, *ecdsa.PrivateKey) {
		return must(ecdsa.GenerateKey(c, rand.Reader)), must(ecdsa.GenerateKey(c, rand.Reader))
	}
	p256, p256b := ec(elliptic.P256())
	p384, p384b := ec(elliptic.P384())
	p521, p521b := ec(elliptic.P521())
	edPub, edPriv := must2(ed25519.GenerateKey(rand.Reader))
	_, edOther := must2(ed25519.GenerateKey(rand.Reader))
	der := func(pub any) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(pub))})
	}
	rsaPub := &rsaKey().PublicKey
	hs := func(n int, c string) []byte { return bytes.Repeat([]byte(c), n) }
	return []algKeys{
		{jwa.HS256(), secret, secret, hs(32, "o"), nil},
		{jwa.HS384(), hs(48, "k"), hs(48, "k"), hs(48, "o"), nil},
		{jwa.HS512(), hs(64, "k"), hs(64, "k"), hs(64, "o"), nil},
		{jwa.RS256(), rsaKey(), rsaPub, rsa2, der(rsaPub)},
		{jwa.RS384(), rsaKey(), rsaPub, rsa2, der(rsaPub)},
		{jwa.RS512(), rsaKey(), rsaPub, rsa2, der(rsaPub)},
		{jwa.PS256(), rsaKey(), rsaPub, rsa2, der(rsaPub)},
		{jwa.PS384(), rsaKey(), rsaPub, rsa2, der(rsaPub)},
		{jwa.PS512(), rsaKey(), rsaPub, rsa2, der(rsaPub)},
		{jwa.ES256(), p256, &p256.PublicKey, p256b, der(&p256.PublicKey)},
		{jwa.ES384(), p384, &p384.PublicKey, p384b, der(&p384.PublicKey)},
		{jwa.ES512(), p521, &p521.PublicKey, p521b, der(&p521.PublicKey)},
		{jwa.EdDSA(), edPriv, edPub, edOther, []byte(edPub)},
		{jwa.EdDSAEd25519(), edPriv, edPub, edOther, []byte(edPub)},
	}
})

// retoken replaces part i (0 header, 1 payload, 2 signature) of tok with
// the base64url encoding of b.
func retoken(tok auth.Token, i int, b []byte) auth.Token {
	parts := strings.Split(string(tok), ".")
	parts[i] = base64.RawURLEncoding.EncodeToString(b)
	return auth.Token(strings.Join(parts, "."))
}

// part returns part i of tok, decoded.
func part(t *testing.T, tok auth.Token, i int) []byte {
	t.Helper()
	return must(base64.RawURLEncoding.DecodeString(strings.Split(string(tok), ".")[i]))
}

// TestVerifyRefusesForgeriesPerAlgorithm presents, to a verifier of each
// supported algorithm, the forgeries an attacker builds from a good token
// or from another key: every one is refused, with the reason in the
// detail, before or at the signature.
func TestVerifyRefusesForgeriesPerAlgorithm(t *testing.T) {
	t.Parallel()
	keys := algorithmKeys()
	claims := valid("alice", time.Hour)
	byName := map[string]algKeys{}
	for _, k := range keys {
		byName[k.alg.String()] = k
	}
	// The algorithm each family's verifier is offered instead: RS256 for
	// HMAC and for PSS (the same RSA key under another padding), ES256 for
	// RSA, EdDSA for ECDSA, ES256 for EdDSA.
	swaps := map[string]string{"HS": "RS256", "PS": "RS256", "RS": "ES256", "ES": "EdDSA", "Ed": "ES256"}
	type forgery struct {
		name   string
		tok    auth.Token
		reason string
	}
	for _, k := range keys {
		swap := byName[swaps[k.alg.String()[:2]]]
		t.Run(k.alg.String(), func(t *testing.T) {
			t.Parallel()
			v := must(auth.NewVerifier(k.alg, k.pub, auth.WithVerifiedCache(0)))
			good := must(auth.Sign(k.alg, k.priv, claims))
			if p, err := v.Verify(context.Background(), good); err != nil || p.Subject != "alice" {
				t.Fatalf("good token: %+v, %v", p, err)
			}
			header := string(part(t, good, 0))
			sig := part(t, good, 2)
			flipped := bytes.Clone(sig)
			flipped[len(flipped)/2] ^= 0x01
			swapped := must(auth.Sign(swap.alg, swap.priv, claims))
			tests := []forgery{
				{"wrong key", must(auth.Sign(k.alg, k.other, claims)), "bad signature"},
				{"tampered header", retoken(good, 0, []byte(strings.Replace(header, `{`, `{"kid":"x",`, 1))), "bad signature"},
				{"tampered payload", retoken(good, 1, part(t, must(auth.Sign(k.alg, k.other, valid("root", time.Hour))), 1)), "bad signature"},
				{"tampered signature", retoken(good, 2, flipped), "bad signature"},
				{"truncated signature", retoken(good, 2, sig[:len(sig)-1]), "bad signature"},
				{"signature of another token", retoken(good, 2, part(t, must(auth.Sign(k.alg, k.priv, valid("bob", time.Hour))), 2)), "bad signature"},
				{"another algorithm: " + swap.alg.String(), swapped, "algorithm not allowed"},
				{"header relabelled over " + swap.alg.String() + "'s signature",
					retoken(swapped, 0, []byte(`{"alg":"`+k.alg.String()+`","typ":"JWT"}`)), "bad signature"},
				{"alg none", retoken(retoken(good, 0, []byte(`{"alg":"none","typ":"JWT"}`)), 2, []byte("x")), "unsigned token"},
				{"alg none, no signature", auth.Token(strings.TrimSuffix(string(retoken(good, 0, []byte(`{"alg":"none"}`))), base64.RawURLEncoding.EncodeToString(sig))), "unsigned token"},
			}
			if k.publicKeyAsSecret != nil {
				confused := must(auth.Sign(jwa.HS256(), k.publicKeyAsSecret, claims))
				tests = append(tests,
					forgery{"HS256 with the public key as the secret", confused, "algorithm not allowed"},
					forgery{"HS256 with the public key, header relabelled",
						retoken(confused, 0, []byte(`{"alg":"`+k.alg.String()+`","typ":"JWT"}`)), "bad signature"})
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					_, err := v.Verify(context.Background(), tt.tok)
					checkRefused(t, err, tt.tok, "invalid token", tt.reason)
				})
			}
		})
	}
}

func TestNewHMACVerifier(t *testing.T) {
	t.Parallel()
	v := must(auth.NewHMACVerifier(secret))
	tests := []struct {
		name string
		key  []byte
		alg  jwa.SignatureAlgorithm
		ok   bool
	}{
		{"HS256 with the secret", secret, jwa.HS256(), true},
		{"HS256 with another secret", bytes.Repeat([]byte("x"), 32), jwa.HS256(), false},
		{"HS512 with the secret", append(bytes.Clone(secret), secret...), jwa.HS512(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := must(auth.Sign(tt.alg, tt.key, valid("alice", time.Minute)))
			_, err := v.Verify(context.Background(), tok)
			if (err == nil) != tt.ok {
				t.Fatalf("Verify: err = %v, want ok %v", err, tt.ok)
			}
			if err != nil && errlog.CodeOf(err) != errlog.Unauthenticated {
				t.Fatalf("code = %v, want unauthenticated", errlog.CodeOf(err))
			}
		})
	}
	if _, err := auth.NewHMACVerifier(secret[:31]); err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Fatalf("short secret: err = %v, want one saying it needs 32 bytes", err)
	}
}
