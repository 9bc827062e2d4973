package auth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// probe reports what the handler behind the middleware sees.
var probe = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, ok := auth.PrincipalFrom(r.Context())
	sub := ""
	if ok {
		sub = p.Subject
	}
	fmt.Fprintf(w, "sub=%s proto=%s uri=%s", sub, r.Header.Get("Sec-WebSocket-Protocol"), r.RequestURI)
})

type failingRevoker struct{}

func (failingRevoker) Revoked(context.Context, *auth.Principal) (bool, error) {
	return false, errors.New("revocation store down")
}

func TestMiddlewareTokenPlaces(t *testing.T) {
	t.Parallel()
	v := hsVerifier(t)
	tok := string(mint(t, valid("alice", time.Hour)))
	other := string(mint(t, valid("bob", time.Hour)))
	expired := string(mint(t, valid("alice", -time.Hour)))
	revoked := auth.NewMemoryRevoker()
	revoked.RevokeSubject("alice")

	type req struct {
		header http.Header
		query  string
	}
	tests := []struct {
		name   string
		opts   []auth.Option
		req    req
		status int
		body   string // the whole body when the status is 401, else a substring
	}{
		{"Authorization header", nil, req{header: http.Header{"Authorization": {"Bearer " + tok}}}, 200, "sub=alice"},
		{"scheme is case-insensitive", nil, req{header: http.Header{"Authorization": {"bearer " + tok}}}, 200, "sub=alice"},
		{"another scheme is no token", nil, req{header: http.Header{"Authorization": {"Basic YTpi"}}}, 401, "invalid token"},
		{"two Authorization headers", nil, req{header: http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}}, 401, "invalid token"},
		{"empty bearer", nil, req{header: http.Header{"Authorization": {"Bearer "}}}, 401, "invalid token"},
		{"subprotocol beside an application protocol", nil,
			req{header: http.Header{"Sec-WebSocket-Protocol": {"wsguard.v1, bearer." + tok}}}, 200, "sub=alice proto=wsguard.v1 "},
		{"subprotocol in its own header line", nil,
			req{header: http.Header{"Sec-WebSocket-Protocol": {"bearer." + tok, "wsguard.v1"}}}, 200, "sub=alice proto=wsguard.v1 "},
		{"subprotocol without a companion", nil,
			req{header: http.Header{"Sec-WebSocket-Protocol": {"bearer." + tok}}}, 401, "invalid token"},
		{"two subprotocol tokens", nil,
			req{header: http.Header{"Sec-WebSocket-Protocol": {"wsguard.v1, bearer." + tok + ", bearer." + other}}}, 401, "invalid token"},
		{"empty subprotocol token", nil,
			req{header: http.Header{"Sec-WebSocket-Protocol": {"wsguard.v1, bearer."}}}, 401, "invalid token"},
		{"header and subprotocol", nil, req{header: http.Header{"Authorization": {"Bearer " + tok},
			"Sec-WebSocket-Protocol": {"wsguard.v1, bearer." + other}}}, 401, "invalid token"},
		{"cookie", []auth.Option{auth.WithCookie("access_token")},
			req{header: http.Header{"Cookie": {"access_token=" + tok}}}, 200, "sub=alice"},
		{"cookie not configured", nil, req{header: http.Header{"Cookie": {"access_token=" + tok}}}, 401, "invalid token"},
		{"two cookies", []auth.Option{auth.WithCookie("access_token")},
			req{header: http.Header{"Cookie": {"access_token=" + tok + "; access_token=" + other}}}, 401, "invalid token"},
		{"header wins over the cookie", []auth.Option{auth.WithCookie("access_token")},
			req{header: http.Header{"Authorization": {"Bearer " + other}, "Cookie": {"access_token=" + tok}}}, 200, "sub=bob"},
		{"query not configured", nil, req{query: "access_token=" + tok}, 401, "invalid token"},
		{"insecure query", []auth.Option{auth.InsecureQueryToken("access_token")},
			req{query: "room=1&access_token=" + tok}, 200, "sub=alice proto= uri=/ws?room=1"},
		{"two query tokens", []auth.Option{auth.InsecureQueryToken("access_token")},
			req{query: "access_token=" + tok + "&access_token=" + tok}, 401, "invalid token"},
		{"query and header", []auth.Option{auth.InsecureQueryToken("access_token")},
			req{query: "access_token=" + tok, header: http.Header{"Authorization": {"Bearer " + tok}}}, 401, "invalid token"},
		{"missing", nil, req{}, 401, "invalid token"},
		{"missing with first-message auth", []auth.Option{auth.WithFirstMessage(0)}, req{}, 200, "sub= "},
		{"invalid with first-message auth", []auth.Option{auth.WithFirstMessage(0)},
			req{header: http.Header{"Authorization": {"Bearer x.y.z"}}}, 401, "invalid token"},
		{"expired", nil, req{header: http.Header{"Authorization": {"Bearer " + expired}}}, 401, "token expired"},
		{"bad signature", nil, req{header: http.Header{"Authorization": {"Bearer " + tok[:len(tok)-4] + "AAAA"}}}, 401, "invalid token"},
		{"revoked", []auth.Option{auth.WithRevoker(revoked, 0)},
			req{header: http.Header{"Authorization": {"Bearer " + tok}}}, 401, "invalid token"},
		{"not revoked", []auth.Option{auth.WithRevoker(revoked, 0)},
			req{header: http.Header{"Authorization": {"Bearer " + other}}}, 200, "sub=bob"},
		{"revoker down", []auth.Option{auth.WithRevoker(failingRevoker{}, 0)},
			req{header: http.Header{"Authorization": {"Bearer " + tok}}}, 503, "try again later"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &wstest.Logs{}
			h := wsguard.Instrument(logTo(logs), nil)(auth.Middleware(v, tt.opts...)(probe))
			r := httptest.NewRequest(http.MethodGet, "/ws", nil)
			r.URL.RawQuery = tt.req.query
			r.RequestURI = r.URL.RequestURI()
			for k, vs := range tt.req.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %q)", w.Code, tt.status, body)
			}
			for _, s := range []string{tok, other, expired} {
				if strings.Contains(body, s) || strings.Contains(logs.String(), s) {
					t.Fatalf("a token leaked into the body or the log:\n%s\n%s", body, logs)
				}
			}
			if w.Code == http.StatusOK {
				if !strings.Contains(body, tt.body) {
					t.Fatalf("handler saw %q, want %q", body, tt.body)
				}
				return
			}
			if body != tt.body {
				t.Fatalf("body = %q, want %q", body, tt.body)
			}
			if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
			if n := len(logs.Find(t, "handshake rejected")); n != 1 {
				t.Fatalf("want one log line, got %d:\n%s", n, logs)
			}
		})
	}
}

// legacyEcho is a handler written with gorilla/websocket, knowing nothing
// of wsguard: the middleware must work in front of it unchanged.
func legacyEcho(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{Subprotocols: []string{"wsguard.v1"}}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	p, _ := auth.PrincipalFrom(r.Context())
	for {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(typ, []byte(p.Subject+": "+string(msg))); err != nil {
			return
		}
	}
}

func TestMiddlewareInFrontOfGorilla(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(wsguard.Instrument(logTo(&wstest.Logs{}), nil)(auth.Middleware(hsVerifier(t))(http.HandlerFunc(legacyEcho))))
	t.Cleanup(ts.Close)
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	tok := string(mint(t, valid("alice", time.Hour)))

	d := websocket.Dialer{Subprotocols: []string{"wsguard.v1", "bearer." + tok}, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "wsguard.v1" {
		t.Fatalf("selected subprotocol %q, want wsguard.v1 and never the token", got)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.ReadMessage()
	if err != nil || string(msg) != "alice: hi" {
		t.Fatalf("read %q, %v", msg, err)
	}

	d.Subprotocols = []string{"wsguard.v1", "bearer." + tok[:len(tok)-4] + "AAAA"}
	_, resp, err = d.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token: err %v, response %v", err, resp)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "invalid token" {
		t.Fatalf("body %q", b)
	}
}

// TestMiddlewareRefusesSessionsOptions gives Middleware the options only
// Sessions can honour: each makes it panic at construction, naming the
// option, where it used to be dropped without a word; their zero forms,
// which ask for nothing Middleware cannot do, are accepted.
func TestMiddlewareRefusesSessionsOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  auth.Option
		want string // "" when accepted
	}{
		{"OnAuthenticated", auth.OnAuthenticated(greet), "OnAuthenticated applies to NewSessions only"},
		{"first-message timeout", auth.WithFirstMessage(time.Second), "WithFirstMessage with a timeout applies to NewSessions only"},
		{"revocation interval", auth.WithRevoker(auth.NewMemoryRevoker(), time.Minute), "WithRevoker with an interval applies to NewSessions only"},
		{"first message, no timeout", auth.WithFirstMessage(0), ""},
		{"revoker, no interval", auth.WithRevoker(auth.NewMemoryRevoker(), 0), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got string
			func() {
				defer func() {
					if r := recover(); r != nil {
						got = fmt.Sprint(r)
					}
				}()
				auth.Middleware(hsVerifier(t), tt.opt)
			}()
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Fatalf("panic %q, want one saying %q", got, tt.want)
			}
			// Sessions honours every one of them.
			auth.NewSessions(hsVerifier(t), tt.opt)
		})
	}
}
