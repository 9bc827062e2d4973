package auth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

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

// FuzzParseRefresh checks that only the exact refresh form yields a token.
func FuzzParseRefresh(f *testing.F) {
	f.Add(`{"type":"refresh","token":"a.b.c"}`)
	f.Add(`{"type":"refresh","token":"a\"}`)
	f.Add(`{"type":"refresh","token":""}`)
	f.Add(`{"type":"refresh", "token":"a.b.c"}`)
	f.Fuzz(func(t *testing.T, data string) {
		tok, ok := parseRefresh([]byte(data))
		if !ok {
			return
		}
		if string(refreshPrefix)+string(tok)+string(refreshSuffix) != data || strings.ContainsAny(string(tok), `"\`) {
			t.Fatalf("parsed %q out of %q", string(tok), data)
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
