package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/lestrrat-go/dsig"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/wsguard/kit/errlog"
)

var fuzzSecret = []byte("fuzz-secret-of-exactly-32-bytes!")

// FuzzExtract feeds the token extractor arbitrary Authorization,
// Sec-WebSocket-Protocol, Cookie and query values.
func FuzzExtract(f *testing.F) {
	f.Add("Bearer a.b.c", "", "", "")
	f.Add("", "wsguard.v1, bearer.a.b.c", "", "")
	f.Add("", "bearer.a.b.c", "", "")
	f.Add("", "bearer.x, BEARER.y, v1", "", "")
	f.Add("Basic YTpi", "", "t=a.b.c", "")
	f.Add("", "", "t=a.b.c; t=d.e.f", "access_token=a.b.c&x=1")
	f.Add("bearer ", ",,, ,", "t=", "access_token=&access_token=x")
	f.Add("", "BeArer.0,\fBEARER.", "", "")
	f.Fuzz(func(t *testing.T, authz, proto, cookie, query string) {
		r, err := http.NewRequest(http.MethodGet, "http://example.com/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.URL.RawQuery = query
		r.RequestURI = r.URL.RequestURI()
		for k, v := range map[string]string{"Authorization": authz, "Sec-WebSocket-Protocol": proto, "Cookie": cookie} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		pl := places{cookie: "t", query: "access_token"}
		tok, out, err := pl.extract(r)
		if err != nil {
			if errlog.CodeOf(err) != errlog.Unauthenticated || errlog.TextOf(err) != textInvalid {
				t.Fatalf("unclassified refusal: %v", err)
			}
			return
		}
		if tok == "" {
			return
		}
		if !strings.Contains(authz+proto+cookie+query, string(tok)) {
			if q, _ := url.ParseQuery(query); q.Get("access_token") != string(tok) {
				t.Fatalf("token %q comes from nowhere", string(tok))
			}
		}
		for e := range strings.SplitSeq(out.Header.Get("Sec-WebSocket-Protocol"), ",") {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(e)), bearerProtocol) {
				t.Fatalf("token entry passed on: %q", out.Header.Get("Sec-WebSocket-Protocol"))
			}
		}
		_, rawQuery, _ := strings.Cut(out.RequestURI, "?")
		passed, _ := url.ParseQuery(rawQuery)
		if out.URL.Query().Has("access_token") || passed.Has("access_token") {
			t.Fatalf("query token passed on: %q", out.RequestURI)
		}
	})
}

// FuzzRefreshMessage holds the recognition of refresh messages against
// a full JSON decoding: a JSON object whose "type" is "refresh" is always
// recognised, however it is spelled, nothing else valid is, and a token
// comes out of exactly the object {"type":"refresh","token":<string>}.
func FuzzRefreshMessage(f *testing.F) {
	f.Add(`{"type":"refresh","token":"a.b.c"}`)
	f.Add(`{"type": "refresh", "token": "a.b.c"}`)
	f.Add(`{"token":"a.b.c","type":"refresh"}`)
	f.Add(" \r\n\t{ \"type\" :\t\"refresh\" , \"token\":\"a.b.c\" } \n")
	f.Add(`{"type":"\u0072efresh","token":"a.b.c"}`)
	f.Add(`{"\u0074ype":"refres\u0068","token":"a.b.c"}`)
	f.Add(`{"type":"chat","type":"refresh","token":"a.b.c"}`)
	f.Add(`{"type":"refresh","token":"a.b.c","token":"d.e.f"}`)
	f.Add(`{"type":"refresh","token":"a.b.c","id":1}`)
	f.Add(`{"type":"refresh","token":7}`)
	f.Add(`{"type":"refresh"}`)
	f.Add(`{"type":"refresh","token":"a.b.c"} x`)
	f.Add(`{"type":"refresh","token":"a.b.c"`)
	f.Add(`{"data":{"type":"refresh","token":"a.b.c"}}`)
	f.Add(`{"type":"refreshments","text":"caf\u00e9"}`)
	f.Add(`["type","refresh"]`)
	f.Fuzz(func(t *testing.T, data string) {
		got := isRefresh([]byte(data))
		var m map[string]any
		if err := json.Unmarshal([]byte(data), &m); err == nil && m != nil {
			if want := m["type"] == "refresh"; got != want {
				t.Fatalf("isRefresh(%q) = %v, want %v", data, got, want)
			}
		}
		if !got {
			return
		}
		tok, err := parseRefresh([]byte(data))
		if err != nil {
			if errlog.CodeOf(err) != errlog.Unauthenticated || errlog.TextOf(err) != textInvalid {
				t.Fatalf("unclassified refusal of %q: %v", data, err)
			}
			return
		}
		if len(m) != 2 || m["type"] != "refresh" || m["token"] != string(tok) || tok == "" {
			t.Fatalf("parsed token %q out of %q, decoded as %v", string(tok), data, m)
		}
	})
}

// FuzzVerify feeds the verifier arbitrary tokens: every refusal is
// classified, and nothing but a token signed with the key passes.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	v, err := NewVerifier(jwa.HS256(), fuzzSecret, WithVerifierClock(func() time.Time { return now }))
	if err != nil {
		f.Fatal(err)
	}
	good, err := Sign(jwa.HS256(), fuzzSecret, Claims{Subject: "alice", Expiry: now.Add(time.Hour)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(good))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Add("....")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := v.Verify(context.Background(), Token(s))
		if err == nil {
			if s != string(good) || p.Subject != "alice" {
				t.Fatalf("accepted %q as %+v", s, p)
			}
			return
		}
		if errlog.CodeOf(err) != errlog.Unauthenticated {
			t.Fatalf("unclassified: %v", err)
		}
		if txt := errlog.TextOf(err); txt != textInvalid && txt != textExpired {
			t.Fatalf("public text %q", txt)
		}
	})
}

// fuzzFamily is one algorithm the verifier supports, with a key pair and
// a verifier of the profile FuzzSignedClaims holds against jwx.
type fuzzFamily struct {
	alg       jwa.SignatureAlgorithm
	priv, pub any
	v         *Verifier
}

// fuzzNow is the instant the fuzz targets verify at.
var fuzzNow = time.Unix(1_700_000_000, 0)

// fuzzFamilies returns every algorithm NewVerifier accepts, each with its
// keys, made once: an RSA key takes long to generate, a fuzz target's
// setup must not.
var fuzzFamilies = sync.OnceValue(func() []fuzzFamily {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	p256, p384, p521 := ec(elliptic.P256()), ec(elliptic.P384()), ec(elliptic.P521())
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	hs384, hs512 := bytes.Repeat([]byte("k"), 48), bytes.Repeat([]byte("K"), 64)
	fs := []fuzzFamily{
		{alg: jwa.HS256(), priv: fuzzSecret, pub: fuzzSecret},
		{alg: jwa.HS384(), priv: hs384, pub: hs384},
		{alg: jwa.HS512(), priv: hs512, pub: hs512},
		{alg: jwa.RS256(), priv: rsaKey, pub: &rsaKey.PublicKey},
		{alg: jwa.RS384(), priv: rsaKey, pub: &rsaKey.PublicKey},
		{alg: jwa.RS512(), priv: rsaKey, pub: &rsaKey.PublicKey},
		{alg: jwa.PS256(), priv: rsaKey, pub: &rsaKey.PublicKey},
		{alg: jwa.PS384(), priv: rsaKey, pub: &rsaKey.PublicKey},
		{alg: jwa.PS512(), priv: rsaKey, pub: &rsaKey.PublicKey},
		{alg: jwa.ES256(), priv: p256, pub: &p256.PublicKey},
		{alg: jwa.ES384(), priv: p384, pub: &p384.PublicKey},
		{alg: jwa.ES512(), priv: p521, pub: &p521.PublicKey},
		{alg: jwa.EdDSA(), priv: edPriv, pub: edPub},
		{alg: jwa.EdDSAEd25519(), priv: edPriv, pub: edPub},
	}
	for i := range fs {
		v, err := NewVerifier(fs[i].alg, fs[i].pub, WithVerifierClock(func() time.Time { return fuzzNow }),
			WithAudience("chat"), WithMaxLifetime(2*time.Hour), WithVerifiedCache(0))
		if err != nil {
			panic(err)
		}
		fs[i].v = v
	}
	return fs
})

// sign returns the compact token of header and claims, as written, signed
// with f's key: with crypto/hmac for HMAC, else with dsig.
func (f *fuzzFamily) sign(header, claims string) (string, error) {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	var sig []byte
	if newHash, ok := hmacHashes[f.alg.String()]; ok {
		mac := hmac.New(newHash, f.priv.([]byte))
		mac.Write([]byte(in))
		sig = mac.Sum(nil)
	} else {
		var err error
		if sig, err = dsig.Sign(f.priv, dsigAlgorithms[f.alg.String()], []byte(in), rand.Reader); err != nil {
			return "", err
		}
	}
	return in + "." + enc.EncodeToString(sig), nil
}

// FuzzSignedClaims signs arbitrary headers and claims sets with the key of
// one of the supported algorithms (alg picks it), so that the fuzzer
// reaches the header checks, the signature verification and the claims
// decoder, which a forged signature never does, and holds the result
// against jwx's own jwt.Parse with the same profile: this verifier may
// refuse what jwx accepts (a duplicate claim, a string exp), never accept
// what jwx refuses, and an accepted token means the same subject, expiry
// and audience to both. A non-zero tamper changes one character of the
// signed token first, in the header, the claims or the signature.
func FuzzSignedClaims(f *testing.F) {
	families := fuzzFamilies()
	claims := []string{
		`{"sub":"alice","aud":"chat","iat":1700000000,"exp":1700003600}`,
		`{"sub":"alice","aud":["mail","chat"],"iat":1699999999.5,"exp":1700000004.9999999999,"nbf":1700000003}`,
		`{"sub":"alice","sub":"root","aud":"chat","iat":1700000000,"exp":1700003600}`,
		`{"sub":"alice","aud":"chat","iat":1700000000,"exp":"1700003600"}`,
		`{"sub":"","aud":"chat","iat":1700000000,"exp":1700003600,"n":{"a":[1,2]}}`,
		`{"sub":"alice","aud":["chat",null],"iat":1700000000,"exp":1700003600,"nbf":null}`,
	}
	for i, fam := range families {
		h := `{"alg":"` + fam.alg.String() + `","typ":"JWT"}`
		for j, c := range claims {
			f.Add(uint8(i), h, c, uint16(0))
			f.Add(uint8(i), h, c, uint16(7*j+3))
		}
		f.Add(uint8(i), `{"alg":"`+fam.alg.String()+`","crit":["x"],"x":1}`, claims[0], uint16(0))
		f.Add(uint8(i), `{"alg":"`+families[(i+3)%len(families)].alg.String()+`"}`, claims[0], uint16(0))
		f.Add(uint8(i), `{"alg":"none"}`, claims[0], uint16(0))
	}
	f.Fuzz(func(t *testing.T, alg uint8, header, claims string, tamper uint16) {
		fam := &families[int(alg)%len(families)]
		tok, err := fam.sign(header, claims)
		if err != nil {
			t.Fatal(err)
		}
		if tamper != 0 {
			b := []byte(tok)
			i := int(tamper) % len(b)
			if b[i] == '.' {
				return
			}
			b[i] = b64Alphabet[(strings.IndexByte(b64Alphabet, b[i])+1+int(tamper>>8)%63)%64]
			tok = string(b)
		}
		p, err := fam.v.Verify(context.Background(), Token(tok))
		if err != nil {
			if errlog.CodeOf(err) != errlog.Unauthenticated {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		jt, jerr := jwt.ParseString(tok,
			jwt.WithKey(fam.alg, fam.pub), jwt.WithValidate(true), jwt.WithAcceptableSkew(DefaultLeeway),
			jwt.WithTruncation(0), jwt.WithClock(jwt.ClockFunc(func() time.Time { return fuzzNow })),
			jwt.WithRequiredClaim(jwt.ExpirationKey), jwt.WithRequiredClaim(jwt.SubjectKey),
			jwt.WithAudience("chat"), jwt.WithMaxDelta(2*time.Hour, jwt.ExpirationKey, jwt.IssuedAtKey))
		if jerr != nil {
			t.Fatalf("%s: accepted what jwx refuses (%v): header %q claims %q tamper %d", fam.alg, jerr, header, claims, tamper)
		}
		sub, _ := jt.Subject()
		exp, _ := jt.Expiration()
		aud, _ := jt.Audience()
		if p.Subject != sub || p.Subject == "" || !p.Expiry.Equal(exp) || !slices.Equal(p.Audience, aud) {
			t.Fatalf("%s: principal %+v, jwx reads sub %q exp %v aud %q", fam.alg, p, sub, exp, aud)
		}
	})
}

// b64Alphabet is base64url's, for changing one character of a token into
// another that still decodes.
const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
