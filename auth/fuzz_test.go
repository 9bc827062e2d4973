package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
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
	v, err := NewVerifier(jwa.HS256(), fuzzSecret, WithClock(func() time.Time { return now }))
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

// FuzzSignedClaims signs arbitrary headers and claims sets with the key,
// so that the fuzzer reaches the claims decoder and checks, which a forged
// signature never does, and holds the result against jwx's own jwt.Parse
// with the same profile: this verifier may refuse what jwx accepts (a
// duplicate claim, a string exp), never accept what jwx refuses, and an
// accepted token means the same subject, expiry and audience to both.
func FuzzSignedClaims(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	v, err := NewVerifier(jwa.HS256(), fuzzSecret, WithClock(func() time.Time { return now }),
		WithAudience("chat"), WithMaxLifetime(2*time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	opts := []jwt.ParseOption{
		jwt.WithKey(jwa.HS256(), fuzzSecret), jwt.WithValidate(true), jwt.WithAcceptableSkew(DefaultLeeway),
		jwt.WithTruncation(0), jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithRequiredClaim(jwt.ExpirationKey), jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithAudience("chat"), jwt.WithMaxDelta(2*time.Hour, jwt.ExpirationKey, jwt.IssuedAtKey),
	}
	f.Add(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"alice","aud":"chat","iat":1700000000,"exp":1700003600}`)
	f.Add(`{"alg":"HS256"}`, `{"sub":"alice","aud":["mail","chat"],"iat":1699999999.5,"exp":1700000004.9999999999,"nbf":1700000003}`)
	f.Add(`{"alg":"HS256"}`, `{"sub":"alice","sub":"root","aud":"chat","iat":1700000000,"exp":1700003600}`)
	f.Add(`{"alg":"HS256","crit":["x"],"x":1}`, `{"sub":"alice","aud":"chat","iat":1700000000,"exp":"1700003600"}`)
	f.Add(`{"alg":"HS256"}`, `{"sub":"","aud":"chat","iat":1700000000,"exp":1700003600,"n":{"a":[1,2]}}`)
	f.Add(`{"alg":"HS256"}`, `{"sub":"alice","aud":["chat",null],"iat":1700000000,"exp":1700003600,"nbf":null}`)
	f.Fuzz(func(t *testing.T, header, claims string) {
		enc := base64.RawURLEncoding
		in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
		mac := hmac.New(sha256.New, fuzzSecret)
		mac.Write([]byte(in))
		tok := in + "." + enc.EncodeToString(mac.Sum(nil))
		p, err := v.Verify(context.Background(), Token(tok))
		if err != nil {
			if errlog.CodeOf(err) != errlog.Unauthenticated {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		jt, jerr := jwt.ParseString(tok, opts...)
		if jerr != nil {
			t.Fatalf("accepted what jwx refuses (%v): header %q claims %q", jerr, header, claims)
		}
		sub, _ := jt.Subject()
		exp, _ := jt.Expiration()
		aud, _ := jt.Audience()
		if p.Subject != sub || p.Subject == "" || !p.Expiry.Equal(exp) || !slices.Equal(p.Audience, aud) {
			t.Fatalf("principal %+v, jwx reads sub %q exp %v aud %q", p, sub, exp, aud)
		}
	})
}
