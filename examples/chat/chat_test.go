package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/examples/client"
	"github.com/wsguard/kit/internal/wstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is a chat server on loopback whose app can be replaced, as a
// restart would, while its address stays.
type testServer struct {
	*httptest.Server
	cfg  config
	logs *wstest.Logs
	app  atomic.Pointer[app]
}

func startServer(t *testing.T, cfg config) *testServer {
	t.Helper()
	return startServerOn(t, cfg, nil)
}

// startServerOn starts a server whose listener is wrap's, when not nil.
func startServerOn(t *testing.T, cfg config, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	ts := &testServer{logs: new(wstest.Logs)}
	cfg.logger = errlog.NewLogger(ts.logs, slog.LevelDebug)
	a, err := newApp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.cfg = cfg
	ts.app.Store(a)
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.app.Load().ServeHTTP(w, r)
	}))
	if wrap != nil {
		ts.Listener = wrap(ts.Listener)
	}
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ts.app.Load().Shutdown(ctx)
		ts.Close()
	})
	return ts
}

// restart serves a new app, as a restarted process would (in demo mode
// with a new key, so the old tokens stop working), and drains the old one
// (close 1001). The returned function waits for the drain, which needs
// the clients to answer the close.
func (ts *testServer) restart(t *testing.T) (wait func() error) {
	t.Helper()
	a, err := newApp(ts.cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := ts.app.Swap(a)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- old.Shutdown(ctx)
	}()
	return func() error { return <-done }
}

func (ts *testServer) wsURL() string { return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws" }

// token fetches a demo token: for the subject of prev when it is valid,
// else for a new guest called name ("" for none).
func (ts *testServer) token(t *testing.T, prev, name string) tokenReply {
	t.Helper()
	tr, status := ts.tryToken(t, prev, name)
	if status != http.StatusOK {
		t.Fatalf("token endpoint: %d", status)
	}
	return tr
}

func (ts *testServer) tryToken(t *testing.T, prev, name string) (tokenReply, int) {
	t.Helper()
	var body io.Reader
	if name != "" {
		b, _ := json.Marshal(tokenRequest{Name: name})
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/demo/token", body)
	if prev != "" {
		req.Header.Set("Authorization", "Bearer "+prev)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenReply
	if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&tr) != nil {
		t.Fatal("token endpoint: undecodable reply")
	}
	return tr, resp.StatusCode
}

func (ts *testServer) dial(t *testing.T, token string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, ts.wsURL(), &websocket.DialOptions{
		Subprotocols: []string{subprotocol, "bearer." + token},
		HTTPHeader:   header,
	})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if c != nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, resp, err
}

// connect dials with a fresh demo token for a guest called name.
func (ts *testServer) connect(t *testing.T, name string) *websocket.Conn {
	t.Helper()
	c, _, err := ts.dial(t, ts.token(t, "", name).Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subprotocol() != subprotocol {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	return c
}

func send(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func closeStatus(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := c.Read(ctx)
		cancel()
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestChat(t *testing.T) {
	t.Parallel()
	ts := startServer(t, config{})
	ada, bob := ts.connect(t, "Ada"), ts.connect(t, "Bob")

	steps := []struct {
		name string
		c    *websocket.Conn
		send string
		want string // prefix of the reply
	}{
		{"say before join", ada, `{"type":"say","text":"hi"}`, `{"type":"error","code":"not_joined","message":"join a room first"}`},
		{"invalid room", ada, `{"type":"join","room":"the lobby"}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"room","rule":"alphanum"}]}`},
		{"a name is not the message's to give", ada, `{"type":"join","room":"lobby","from":"Bob"}`,
			`{"type":"error","code":"invalid_argument","message":"unknown field"`},
		{"join", ada, `{"type":"join","room":"lobby"}`, `{"type":"joined","room":"lobby","members":1,"name":"Ada","sub":"guest-`},
		{"member of another type", ada, `{"type":"join","room":"lobby","text":"x"}`,
			`{"type":"error","code":"invalid_argument","message":"unknown field"`},
		{"second join", bob, `{"type":"join","room":"lobby"}`, `{"type":"joined","room":"lobby","members":2,"name":"Bob","sub":"guest-`},
		{"the first member hears of it", ada, "", `{"type":"presence","event":"join","room":"lobby","name":"Bob","sub":"guest-`},
		{"empty text", ada, `{"type":"say","text":""}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"text","rule":"required"}]}`},
		{"too long", ada, `{"type":"say","text":"` + strings.Repeat("x", 501) + `"}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"text","rule":"max","param":"500"}]}`},
	}
	for _, s := range steps {
		if s.send != "" {
			send(t, s.c, s.send)
		}
		if got := read(t, s.c); !strings.HasPrefix(got, s.want) {
			t.Errorf("%s: got %s\nwant %s", s.name, got, s.want)
		}
	}

	say := `{"type":"say","text":"hello, <b>lobby</b>"}`
	send(t, ada, say)
	var subs []string
	for _, c := range []*websocket.Conn{ada, bob} {
		var m chatMsg
		if err := json.Unmarshal([]byte(read(t, c)), &m); err != nil {
			t.Fatal(err)
		}
		if m.Type != "message" || m.Room != "lobby" || m.From != "Ada" || !strings.HasPrefix(m.Sub, "guest-") ||
			m.Text != "hello, <b>lobby</b>" || m.Digest != sha(say) {
			t.Errorf("broadcast %+v", m)
		}
		subs = append(subs, m.Sub)
	}
	if subs[0] != subs[1] {
		t.Errorf("the speaker's subject differs between members: %q", subs)
	}

	// Leaving the room by disconnecting shrinks it, and the others hear.
	_ = bob.Close(websocket.StatusNormalClosure, "")
	var left presenceMsg
	if err := json.Unmarshal([]byte(read(t, ada)), &left); err != nil {
		t.Fatal(err)
	}
	if left.Type != "presence" || left.Event != "leave" || left.Name != "Bob" || left.Members != 1 {
		t.Errorf("leave notice %+v", left)
	}

	// Moving to another room is leaving the first one.
	carol := ts.connect(t, "Carol")
	send(t, carol, `{"type":"join","room":"lobby"}`)
	_ = read(t, carol)
	_ = read(t, ada) // Carol joined
	send(t, carol, `{"type":"join","room":"kitchen"}`)
	if got, want := read(t, carol), `{"type":"joined","room":"kitchen","members":1,"name":"Carol"`; !strings.HasPrefix(got, want) {
		t.Errorf("moving: got %s, want %s", got, want)
	}
	if got, want := read(t, ada), `{"type":"presence","event":"leave","room":"lobby","name":"Carol"`; !strings.HasPrefix(got, want) {
		t.Errorf("moving: the old room got %s, want %s", got, want)
	}

	send(t, ada, `{"type":"shout","text":"x"}`)
	if got := closeStatus(t, ada); got != websocket.StatusUnsupportedData {
		t.Errorf("unknown type: close %v, want 1003", got)
	}

	logs := ts.logs.String()
	for _, secret := range []string{"hello, <b>lobby</b>", "eyJ"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, sha(say)) {
		t.Errorf("the log does not name the say message by its digest:\n%s", logs)
	}
}

func TestHandshake(t *testing.T) {
	t.Parallel()
	ts := startServer(t, config{})
	tok := ts.token(t, "", "").Token
	tests := []struct {
		name   string
		token  string
		origin string
		status int
	}{
		{"same origin", tok, ts.URL, http.StatusSwitchingProtocols},
		{"no Origin (not a browser)", tok, "", http.StatusSwitchingProtocols},
		{"another origin", tok, "http://evil.example", http.StatusForbidden},
		{"another port", tok, "http://127.0.0.1:1", http.StatusForbidden},
		{"no token", "", ts.URL, http.StatusUnauthorized},
		{"bad token", tok + "x", ts.URL, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			protos := []string{subprotocol}
			if tt.token != "" {
				protos = append(protos, "bearer."+tt.token)
			}
			c, resp, _ := websocket.Dial(ctx, ts.wsURL(), &websocket.DialOptions{Subprotocols: protos, HTTPHeader: h})
			if resp != nil && resp.Body != nil {
				_ = resp.Body.Close()
			}
			if c != nil {
				_ = c.Close(websocket.StatusNormalClosure, "")
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Errorf("response %v, want %d", resp, tt.status)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	ts := startServer(t, config{tokenTTL: time.Minute})
	first := ts.token(t, "", "Ada Lovelace")
	if !strings.HasPrefix(first.Sub, "guest-") || first.Name != "Ada Lovelace" || first.Exp-time.Now().Unix() > 60 {
		t.Errorf("token %+v", first)
	}
	again := ts.token(t, first.Token, "Mallory")
	if again.Sub != first.Sub || again.Name != first.Name {
		t.Errorf("refresh changed the identity: %+v -> %+v", first, again)
	}
	// Within one second too, the page must tell a new token from the one
	// the server has just refused.
	if again.Token == first.Token {
		t.Error("a refresh returned the same token")
	}
	if other := ts.token(t, "not-a-token", ""); other.Sub == first.Sub || other.Name != other.Sub {
		t.Errorf("an invalid token kept its identity, or a nameless guest is not called by its subject: %+v", other)
	}

	t.Run("names", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name, give string
			status     int
		}{
			{"plain", "Bob", http.StatusOK},
			{"not ASCII", "Zoë 🐙", http.StatusOK},
			{"32 characters", strings.Repeat("é", 32), http.StatusOK},
			{"33 characters", strings.Repeat("é", 33), http.StatusBadRequest},
			{"control character", "Bob\u0007", http.StatusBadRequest},
			{"line break", "Bob\nAlice", http.StatusBadRequest},
			{"leading space", " Bob", http.StatusBadRequest},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				tr, status := ts.tryToken(t, "", tt.give)
				if status != tt.status || status == http.StatusOK && tr.Name != tt.give {
					t.Errorf("status %d name %q, want %d", status, tr.Name, tt.status)
				}
			})
		}
	})

	t.Run("in-band refresh", func(t *testing.T) {
		c, _, err := ts.dial(t, first.Token, nil)
		if err != nil {
			t.Fatal(err)
		}
		next := ts.token(t, first.Token, "")
		send(t, c, `{"type":"refresh","token":"`+next.Token+`"}`)
		if got, want := read(t, c), `{"type":"refreshed","exp":`; !strings.HasPrefix(got, want) {
			t.Errorf("got %s", got)
		}
	})
	t.Run("body that is not a token request", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			body   string
			status int
		}{
			{"{", http.StatusBadRequest},
			{`{"name":7}`, http.StatusBadRequest},
			{`"Ada"`, http.StatusBadRequest},
			{strings.Repeat(" ", 2<<10) + `{"name":"Ada"}`, http.StatusRequestEntityTooLarge},
		}
		for _, tt := range tests {
			resp, err := http.Post(ts.URL+"/demo/token", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("%.20q: status %d, want %d", tt.body, resp.StatusCode, tt.status)
			}
		}
	})
	t.Run("cross-origin token request", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/demo/token", nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "http://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("off with a configured key", func(t *testing.T) {
		keyed := startServer(t, config{key: []byte("a-configured-key-of-32-bytes-or-more")})
		resp, err := http.Post(keyed.URL+"/demo/token", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
}

func TestShortKey(t *testing.T) {
	t.Parallel()
	if _, err := newApp(config{key: []byte("short")}); err == nil {
		t.Error("newApp accepted a 5-byte key")
	}
}

func TestRestartClosesGoingAway(t *testing.T) {
	t.Parallel()
	ts := startServer(t, config{})
	old := ts.token(t, "", "").Token
	c, _, err := ts.dial(t, old, nil)
	if err != nil {
		t.Fatal(err)
	}
	wait := ts.restart(t)
	if got := closeStatus(t, c); got != websocket.StatusGoingAway {
		t.Errorf("close %v, want 1001", got)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	// The restarted demo server has a new key: the old token is refused
	// and a new one works.
	if _, resp, err := ts.dial(t, old, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old token after restart: %v %v", resp, err)
	}
	ts.connect(t, "")
}

func TestPage(t *testing.T) {
	t.Parallel()
	ts := startServer(t, config{})
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, html := get("/")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self';") ||
		!strings.Contains(csp, "style-src 'sha256-") {
		t.Errorf("status %d, CSP %q", resp.StatusCode, csp)
	}
	if !strings.Contains(html, "<style>"+pageCSS+"</style>") || !strings.Contains(html, `<script type="module" src="/app.js"></script>`) {
		t.Error("the page does not inline its style and load its module")
	}
	for _, external := range []string{"://", "@import", "url("} {
		if strings.Contains(html, external) {
			t.Errorf("the page refers to another origin (%s)", external)
		}
	}

	scripts := []struct{ path, body string }{{"/app.js", pageJS}, {"/wsguard.js", client.Module}}
	for _, s := range scripts {
		resp, body := get(s.path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || body != s.body {
			t.Errorf("GET %s: %d %q", s.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if !strings.Contains(pageJS, `from "/wsguard.js"`) {
		t.Error("the page's script does not import the client module")
	}

	for _, path := range []string{"/other", "/page/app.js", "/client/wsguard.js"} {
		if resp, _ := get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}
