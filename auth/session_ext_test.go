package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

func TestSessionHandshakeToken(t *testing.T) {
	t.Parallel()
	h := start(t, hsVerifier(t), nil)
	tok := mint(t, valid("alice", time.Hour))
	tests := []struct {
		name  string
		opts  *websocket.DialOptions
		proto string
	}{
		{"Authorization header", bearer(tok), ""},
		{"subprotocol", &websocket.DialOptions{Subprotocols: []string{"wsguard.v1", "bearer." + string(tok)}}, "wsguard.v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, h.url, tt.opts)
			if c.Subprotocol() != tt.proto {
				t.Fatalf("subprotocol %q, want %q", c.Subprotocol(), tt.proto)
			}
			if got := read(t, c); got != "Authenticated!" {
				t.Fatalf("greeting %q", got)
			}
			write(t, c, "hello")
			if got := read(t, c); got != "Server received: hello" {
				t.Fatalf("echo %q", got)
			}
			_ = c.Close(websocket.StatusNormalClosure, "")
		})
	}
	t.Run("logs", func(t *testing.T) {
		t.Parallel()
		c := dial(t, h.url, bearer(mint(t, valid("carol", time.Hour))))
		read(t, c)
		_ = c.Close(websocket.StatusNormalClosure, "")
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for _, l := range h.logs.Find(t, "connection closed") {
				if l["sub"] == "carol" {
					return
				}
			}
		}
		t.Fatalf("no closing line with the subject:\n%s", h.logs)
	})
}

func TestSessionFirstMessage(t *testing.T) {
	t.Parallel()
	h := start(t, hsVerifier(t), []auth.Option{auth.WithFirstMessage(0)})
	now := time.Now()
	good := valid("alice", time.Hour)
	with := func(f func(*auth.Claims)) auth.Claims {
		c := good
		f(&c)
		return c
	}
	tests := []struct {
		name   string
		tok    func(t *testing.T) auth.Token
		reason string // "" for a valid token, else the close reason
	}{
		{"valid", func(t *testing.T) auth.Token { return mint(t, good) }, ""},
		{"bad signature", func(t *testing.T) auth.Token {
			return must(auth.Sign(jwa.HS256(), []byte("another-secret-of-32-bytes-long!"), good))
		}, "invalid token"},
		{"alg none", func(*testing.T) auth.Token {
			return handmade(`{"alg":"none"}`, `{"sub":"alice","exp":4102444800}`, "")
		}, "invalid token"},
		{"another algorithm", func(t *testing.T) auth.Token {
			return must(auth.Sign(jwa.HS384(), append(secret, secret[:16]...), good))
		}, "invalid token"},
		{"expired", func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Expiry = now.Add(-time.Minute) }))
		}, "token expired"},
		{"no exp", func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Expiry = time.Time{} }))
		}, "invalid token"},
		{"no sub", func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Subject = "" }))
		}, "invalid token"},
		{"malformed", func(*testing.T) auth.Token { return "hello" }, "invalid token"},
		{"oversized", func(t *testing.T) auth.Token {
			return mint(t, with(func(c *auth.Claims) { c.Extra = map[string]any{"pad": strings.Repeat("x", 9<<10)} }))
		}, "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, h.url, nil)
			tok := tt.tok(t)
			write(t, c, string(tok))
			if tt.reason == "" {
				if got := read(t, c); got != "Authenticated!" {
					t.Fatalf("greeting %q", got)
				}
				write(t, c, "hello")
				if got := read(t, c); got != "Server received: hello" {
					t.Fatalf("echo %q", got)
				}
				return
			}
			code, reason, msgs := closeOf(t, c, 5*time.Second)
			if code != 4401 || reason != tt.reason || len(msgs) != 0 {
				t.Fatalf("closed %d %q after %q, want 4401 %q", code, reason, msgs, tt.reason)
			}
			if strings.Contains(h.logs.String(), string(tok)) {
				t.Fatalf("the token is in the log:\n%s", h.logs)
			}
		})
	}
}

func TestSessionAuthTimeout(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{0, 2 * time.Second} {
		t.Run(timeout.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				b := startBubble(t, hsVerifier(t), []auth.Option{auth.WithFirstMessage(timeout)})
				c := b.dial(t, nil)
				start := time.Now()
				code, reason, _ := closeOf(t, c, time.Minute)
				want := timeout
				if want == 0 {
					want = auth.DefaultAuthTimeout
				}
				if code != 4408 || reason != "timeout" || time.Since(start) != want {
					t.Fatalf("closed %d %q after %v, want 4408 after %v", code, reason, time.Since(start), want)
				}
			})
		})
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first bool
	}{
		{"handshake token", false},
		{"first-message token", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var opts []auth.Option
				if tt.first {
					opts = append(opts, auth.WithFirstMessage(0))
				}
				b := startBubble(t, hsVerifier(t), opts)
				start := time.Now()
				tok := mint(t, auth.Claims{Subject: "alice", Expiry: start.Add(30 * time.Second)})
				var c *websocket.Conn
				if tt.first {
					c = b.dial(t, nil)
					write(t, c, string(tok))
				} else {
					c = b.dial(t, bearer(tok))
				}
				if got := read(t, c); got != "Authenticated!" {
					t.Fatalf("greeting %q", got)
				}
				time.Sleep(20 * time.Second)
				write(t, c, "still here")
				if got := read(t, c); got != "Server received: still here" {
					t.Fatalf("echo %q", got)
				}
				code, reason, _ := closeOf(t, c, time.Hour)
				if code != 4401 || reason != "token expired" {
					t.Fatalf("closed %d %q", code, reason)
				}
				if got, want := time.Since(start), 30*time.Second+auth.DefaultLeeway; got != want {
					t.Fatalf("closed after %v, want exp + leeway = %v", got, want)
				}
			})
		})
	}
}

// TestSessionNoDispatchAfterExpiry reads a message after exp + leeway
// before the timer has acted: it must not reach the handler.
func TestSessionNoDispatchAfterExpiry(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64
	v := hsVerifier(t, auth.WithVerifierClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	var served atomic.Int32
	logs := &wstest.Logs{}
	sessions := auth.NewSessions(v)
	srv := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		served.Add(1)
		return c.SendText(ctx, "served")
	}), append(sessions.Options(), wsguard.WithLogger(logTo(logs)))...)
	ts := serve(t, srv)
	c := dial(t, ts, bearer(mint(t, valid("alice", time.Minute))))
	write(t, c, "before")
	if got := read(t, c); got != "served" {
		t.Fatalf("reply %q", got)
	}
	// The verifier's clock passes exp + leeway; the real timer is a
	// minute away.
	skew.Store(int64(2 * time.Minute))
	write(t, c, "after")
	code, reason, msgs := closeOf(t, c, 5*time.Second)
	if code != 4401 || reason != "token expired" || len(msgs) != 0 || served.Load() != 1 {
		t.Fatalf("closed %d %q after %q, served %d: the late message was dispatched", code, reason, msgs, served.Load())
	}
}

func TestSessionRefresh(t *testing.T) {
	t.Parallel()
	refresh := func(tok auth.Token) string { return `{"type":"refresh","token":"` + string(tok) + `"}` }
	tests := []struct {
		name   string
		msg    func(t *testing.T, start time.Time) string
		reason string // "" when the refresh succeeds
	}{
		{"same subject", func(t *testing.T, start time.Time) string {
			return refresh(mint(t, auth.Claims{Subject: "alice", Expiry: start.Add(2 * time.Minute)}))
		}, ""},
		{"other subject", func(t *testing.T, start time.Time) string {
			return refresh(mint(t, auth.Claims{Subject: "mallory", Expiry: start.Add(2 * time.Minute)}))
		}, "invalid token"},
		{"expired token", func(t *testing.T, start time.Time) string {
			return refresh(mint(t, auth.Claims{Subject: "alice", Expiry: start.Add(-time.Minute)}))
		}, "token expired"},
		{"bad signature", func(t *testing.T, start time.Time) string {
			return refresh(must(auth.Sign(jwa.HS256(), []byte("another-secret-of-32-bytes-long!"),
				auth.Claims{Subject: "alice", Expiry: start.Add(2 * time.Minute)})))
		}, "invalid token"},
		{"Python's spacing", func(t *testing.T, start time.Time) string {
			return `{"type": "refresh", "token": "` + string(mint(t, auth.Claims{Subject: "alice", Expiry: start.Add(2 * time.Minute)})) + `"}`
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				b := startBubble(t, hsVerifier(t), nil)
				start := time.Now()
				c := b.dial(t, bearer(mint(t, auth.Claims{Subject: "alice", Expiry: start.Add(30 * time.Second)})))
				read(t, c)
				time.Sleep(20 * time.Second)
				write(t, c, tt.msg(t, start))
				if tt.reason != "" {
					code, reason, msgs := closeOf(t, c, time.Hour)
					if code != 4401 || reason != tt.reason || len(msgs) != 0 {
						t.Fatalf("closed %d %q after %q, want 4401 %q", code, reason, msgs, tt.reason)
					}
					return
				}
				var ack struct {
					Type string `json:"type"`
					Exp  int64  `json:"exp"`
				}
				if err := json.Unmarshal([]byte(read(t, c)), &ack); err != nil || ack.Type != "refreshed" ||
					ack.Exp != start.Add(2*time.Minute).Unix() {
					t.Fatalf("ack %+v, %v", ack, err)
				}
				// Past the old expiry the connection still serves.
				time.Sleep(time.Minute)
				write(t, c, `{"type":"refreshments"}`)
				if got := read(t, c); got != `Server received: {"type":"refreshments"}` {
					t.Fatalf("echo %q", got)
				}
				code, reason, _ := closeOf(t, c, time.Hour)
				if code != 4401 || reason != "token expired" || time.Since(start) != 2*time.Minute+auth.DefaultLeeway {
					t.Fatalf("closed %d %q after %v, want at the new exp + leeway", code, reason, time.Since(start))
				}
			})
		})
	}
}

func TestSessionRevocation(t *testing.T) {
	t.Parallel()
	t.Run("checked periodically", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			rev := auth.NewMemoryRevoker()
			b := startBubble(t, hsVerifier(t), []auth.Option{auth.WithRevoker(rev, 10*time.Second)})
			start := time.Now()
			claims := auth.Claims{Subject: "alice", Expiry: start.Add(time.Hour), ID: "t-1"}
			c := b.dial(t, bearer(mint(t, claims)))
			read(t, c)
			time.Sleep(25 * time.Second)
			rev.RevokeToken("t-1", claims.Expiry.Add(auth.DefaultLeeway))
			code, reason, _ := closeOf(t, c, time.Hour)
			if code != 4401 || reason != "invalid token" || time.Since(start) != 30*time.Second {
				t.Fatalf("closed %d %q after %v, want 4401 at the next check (30s)", code, reason, time.Since(start))
			}
		})
	})
	t.Run("on refresh", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			rev := auth.NewMemoryRevoker()
			b := startBubble(t, hsVerifier(t), []auth.Option{auth.WithRevoker(rev, 0)})
			c := b.dial(t, bearer(mint(t, valid("alice", time.Hour))))
			read(t, c)
			next := valid("alice", 2*time.Hour)
			rev.RevokeToken(next.ID, next.Expiry)
			write(t, c, `{"type":"refresh","token":"`+string(mint(t, next))+`"}`)
			if code, reason, _ := closeOf(t, c, time.Minute); code != 4401 || reason != "invalid token" {
				t.Fatalf("closed %d %q", code, reason)
			}
		})
	})
	t.Run("close a subject now", func(t *testing.T) {
		t.Parallel()
		h := start(t, hsVerifier(t), nil)
		alice1 := dial(t, h.url, bearer(mint(t, valid("alice", time.Hour))))
		alice2 := dial(t, h.url, bearer(mint(t, valid("alice", time.Hour))))
		bob := dial(t, h.url, bearer(mint(t, valid("bob", time.Hour))))
		for _, c := range []*websocket.Conn{alice1, alice2, bob} {
			read(t, c)
		}
		var wg sync.WaitGroup
		for _, c := range []*websocket.Conn{alice1, alice2} {
			wg.Go(func() {
				if code, reason, _ := closeOf(t, c, 5*time.Second); code != 4401 || reason != "invalid token" {
					t.Errorf("closed %d %q", code, reason)
				}
			})
		}
		if n := h.sessions.CloseSubject("alice"); n != 2 {
			t.Fatalf("CloseSubject closed %d connections, want 2", n)
		}
		wg.Wait()
		write(t, bob, "hi")
		if got := read(t, bob); got != "Server received: hi" {
			t.Fatalf("bob's connection: %q", got)
		}
		// A connection is forgotten when its serving goroutine ends,
		// just after the close handshake CloseSubject waits for.
		for deadline := time.Now().Add(5 * time.Second); h.sessions.CloseSubject("alice") != 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("closed connections are still tracked")
			}
		}
	})
}

// TestSessionFarExpiry holds a connection whose token expires at the last
// second the verifier accepts (9999-12-31T23:59:59Z), far past what
// nanoseconds since 1970 in an int64 can count: it must stay open.
func TestSessionFarExpiry(t *testing.T) {
	t.Parallel()
	far := time.Unix(253402300799, 0)
	tests := []struct {
		name  string
		first bool
	}{
		{"handshake token", false},
		{"first-message token", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, hsVerifier(t), []auth.Option{auth.WithFirstMessage(0)})
			tok := mint(t, auth.Claims{Subject: "alice", Expiry: far})
			var c *websocket.Conn
			if tt.first {
				c = dial(t, h.url, nil)
				write(t, c, string(tok))
			} else {
				c = dial(t, h.url, bearer(tok))
			}
			if got := read(t, c); got != "Authenticated!" {
				t.Fatalf("greeting %q", got)
			}
			write(t, c, "hello")
			if got := read(t, c); got != "Server received: hello" {
				t.Fatalf("echo %q", got)
			}
			write(t, c, `{"type":"refresh","token":"`+string(tok)+`"}`)
			var ack struct {
				Type string `json:"type"`
				Exp  int64  `json:"exp"`
			}
			if err := json.Unmarshal([]byte(read(t, c)), &ack); err != nil || ack.Type != "refreshed" || ack.Exp != far.Unix() {
				t.Fatalf("ack %+v, %v", ack, err)
			}
			write(t, c, "still here")
			if got := read(t, c); got != "Server received: still here" {
				t.Fatalf("echo %q", got)
			}
			_ = c.Close(websocket.StatusNormalClosure, "")
		})
	}
}

// TestSessionRefreshSpellings refreshes over a real socket with the JSON
// real clients write: whatever the spelling, the session takes the new
// token, and no refresh message, well-formed or not, reaches the
// application or comes back in a reply.
func TestSessionRefreshSpellings(t *testing.T) {
	t.Parallel()
	type object = map[string]any
	tests := []struct {
		name   string
		msg    func(tok string) string
		reason string // "" when the refresh succeeds, else the close reason
	}{
		{"exact", func(tok string) string { return `{"type":"refresh","token":"` + tok + `"}` }, ""},
		{"Python json.dumps", func(tok string) string { return `{"type": "refresh", "token": "` + tok + `"}` }, ""},
		{"JavaScript JSON.stringify, token first", func(tok string) string { return `{"token":"` + tok + `","type":"refresh"}` }, ""},
		{"indented", func(tok string) string {
			return "\n{\n  \"token\" : \"" + tok + "\",\r\n\t\"type\":\t\"refresh\"\n}\n"
		}, ""},
		{"escaped letters", func(tok string) string { return `{"\u0074ype":"r\u0065fresh","token":"` + tok + `"}` }, ""},
		{"no token", func(string) string { return `{"type": "refresh"}` }, "invalid token"},
		{"null token", func(string) string { return `{"type":"refresh","token":null}` }, "invalid token"},
		{"token not a string", func(string) string { return `{"token": 42, "type": "refresh"}` }, "invalid token"},
		{"token in an array", func(tok string) string { return `{"type":"refresh","token":["` + tok + `"]}` }, "invalid token"},
		{"another member", func(tok string) string { return `{"type":"refresh","token":"` + tok + `","id":7}` }, "invalid token"},
		{"duplicate type", func(tok string) string { return `{"type":"chat","type":"refresh","token":"` + tok + `"}` }, "invalid token"},
		{"duplicate token", func(tok string) string {
			return `{"type":"refresh","token":"` + tok + `","token":"` + tok + `"}`
		}, "invalid token"},
		{"trailing bytes", func(tok string) string { return `{"type":"refresh","token":"` + tok + `"} ok?` }, "invalid token"},
		{"cut short", func(tok string) string { return `{"type":"refresh","token":"` + tok }, "invalid token"},
		{"invalid token", func(tok string) string { return `{"type":"refresh","token":"` + tok + `x"}` }, "invalid token"},
		{"another subject", func(string) string { return "" }, "invalid token"},
	}
	var seen sync.Mutex
	var messages []string
	app := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		seen.Lock()
		messages = append(messages, string(m.Data))
		seen.Unlock()
		p, _ := auth.PrincipalFrom(ctx)
		return c.SendJSON(ctx, object{"got": string(m.Data), "exp": p.Expiry.Unix()})
	})
	logs := &wstest.Logs{}
	sessions := auth.NewSessions(hsVerifier(t))
	url := serve(t, wsguard.New(app, append(sessions.Options(), wsguard.WithLogger(logTo(logs)))...))
	var tokens []string
	for _, tt := range tests {
		now := time.Now().Truncate(time.Second)
		next := mint(t, auth.Claims{Subject: "alice", Expiry: now.Add(2 * time.Hour), ID: tt.name})
		msg := tt.msg(string(next))
		if tt.name == "another subject" {
			next = mint(t, auth.Claims{Subject: "mallory", Expiry: now.Add(2 * time.Hour)})
			msg = `{"type": "refresh", "token": "` + string(next) + `"}`
		}
		tokens = append(tokens, string(next))
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, url, bearer(mint(t, auth.Claims{Subject: "alice", Expiry: now.Add(time.Hour)})))
			write(t, c, msg)
			if tt.reason != "" {
				code, reason, msgs := closeOf(t, c, 5*time.Second)
				if code != 4401 || reason != tt.reason || len(msgs) != 0 {
					t.Fatalf("closed %d %q after %q, want 4401 %q", code, reason, msgs, tt.reason)
				}
				return
			}
			var ack struct {
				Type string `json:"type"`
				Exp  int64  `json:"exp"`
			}
			if err := json.Unmarshal([]byte(read(t, c)), &ack); err != nil || ack.Type != "refreshed" ||
				ack.Exp != now.Add(2*time.Hour).Unix() {
				t.Fatalf("ack %+v, %v", ack, err)
			}
			// The application sees the new token's expiry, not the old.
			write(t, c, "exp?")
			var reply struct {
				Got string `json:"got"`
				Exp int64  `json:"exp"`
			}
			if err := json.Unmarshal([]byte(read(t, c)), &reply); err != nil || reply.Got != "exp?" ||
				reply.Exp != now.Add(2*time.Hour).Unix() {
				t.Fatalf("reply %+v, %v: the session was not extended", reply, err)
			}
			_ = c.Close(websocket.StatusNormalClosure, "")
		})
	}
	seen.Lock()
	defer seen.Unlock()
	for _, m := range messages {
		if m != "exp?" {
			t.Errorf("the application got %q", m)
		}
	}
	for _, tok := range tokens {
		if strings.Contains(logs.String(), tok) {
			t.Fatalf("a token is in the log:\n%s", logs)
		}
	}
}

// TestSessionRefreshTypeLookalikes sends messages that mention refresh
// without being a refresh message: each reaches the application.
func TestSessionRefreshTypeLookalikes(t *testing.T) {
	t.Parallel()
	h := start(t, hsVerifier(t), nil)
	c := dial(t, h.url, bearer(mint(t, valid("alice", time.Hour))))
	read(t, c)
	for _, msg := range []string{
		`{"type":"refreshments","token":"x"}`,
		`{"type":"chat","text":"please refresh"}`,
		`{"data":{"type":"refresh","note":"nested, the application's own"}}`,
		`["type","refresh"]`,
		`refresh`,
		`{"type":"Refresh","token":"x"}`,
		`{"type":"caf\u00e9","text":"\u00fcber"}`,
	} {
		write(t, c, msg)
		if got := read(t, c); got != "Server received: "+msg {
			t.Fatalf("sent %q, got %q", msg, got)
		}
	}
}

// TestSessionRefreshBinary sends a refresh message in a binary frame to a
// server that takes binary messages: it is a refresh all the same, and
// its token does not reach the handler.
func TestSessionRefreshBinary(t *testing.T) {
	t.Parallel()
	h := start(t, hsVerifier(t), nil, wsguard.WithBinary())
	c := dial(t, h.url, bearer(mint(t, valid("alice", time.Minute))))
	read(t, c)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg := `{"type": "refresh", "token": "` + string(mint(t, auth.Claims{Subject: "alice", Expiry: exp})) + `"}`
	if err := c.Write(ctx, websocket.MessageBinary, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, c), fmt.Sprintf(`{"type":"refreshed","exp":%d}`, exp.Unix()); got != want {
		t.Fatalf("reply %q, want %q", got, want)
	}
}

// TestCloseSubjectAfterOneLeft checks that a subject's connection that
// ends, whichever of its connections it is (the first, one in between, the
// latest), is forgotten and leaves the others tracked: CloseSubject then
// closes exactly those.
func TestCloseSubjectAfterOneLeft(t *testing.T) {
	t.Parallel()
	for _, leaving := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("connection %d of 3", leaving+1), func(t *testing.T) {
			t.Parallel()
			h := start(t, hsVerifier(t), nil)
			conns := make([]*websocket.Conn, 3)
			for i := range conns {
				conns[i] = dial(t, h.url, bearer(mint(t, valid("alice", time.Hour))))
				read(t, conns[i])
			}
			conns[leaving].Close(websocket.StatusNormalClosure, "")
			// It is forgotten when its serving goroutine ends, just
			// after the close handshake.
			for deadline := time.Now().Add(5 * time.Second); auth.Tracked(h.sessions, "alice") != 2; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d connections tracked, want 2", auth.Tracked(h.sessions, "alice"))
				}
			}
			var wg sync.WaitGroup
			for i, c := range conns {
				if i == leaving {
					continue
				}
				wg.Go(func() {
					if code, reason, _ := closeOf(t, c, 5*time.Second); code != 4401 || reason != "invalid token" {
						t.Errorf("connection %d closed %d %q", i+1, code, reason)
					}
				})
			}
			if n := h.sessions.CloseSubject("alice"); n != 2 {
				t.Errorf("CloseSubject closed %d connections, want 2", n)
			}
			wg.Wait()
		})
	}
}

// TestSessionPrincipalSurvivesRefresh checks that a principal a handler
// holds is never changed under it: a refresh makes the connection's next
// principal a new one, whether the first came from the handshake or from
// the first message.
func TestSessionPrincipalSurvivesRefresh(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first bool
	}{
		{"handshake token", false},
		{"first-message token", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var held *auth.Principal
			app := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
				p, _ := auth.PrincipalFrom(ctx)
				if string(m.Data) == "hold" {
					held = p
				}
				return c.SendText(ctx, held.TokenID+" "+p.TokenID)
			})
			var aopts []auth.Option
			if tt.first {
				aopts = append(aopts, auth.WithFirstMessage(0))
			}
			sessions := auth.NewSessions(hsVerifier(t), append(aopts, auth.OnAuthenticated(greet))...)
			url := serve(t, wsguard.New(app, sessions.Options()...))
			claims := valid("alice", time.Hour)
			claims.ID = "t-1"
			var c *websocket.Conn
			if tt.first {
				c = dial(t, url, nil)
				write(t, c, string(mint(t, claims)))
			} else {
				c = dial(t, url, bearer(mint(t, claims)))
			}
			read(t, c) // greeted
			write(t, c, "hold")
			if got := read(t, c); got != "t-1 t-1" {
				t.Fatalf("held and current token IDs %q, want t-1 t-1", got)
			}
			claims.ID, claims.Expiry = "t-2", claims.Expiry.Add(time.Hour)
			write(t, c, `{"type":"refresh","token":"`+string(mint(t, claims))+`"}`)
			read(t, c) // refreshed
			write(t, c, "check")
			if got := read(t, c); got != "t-1 t-2" {
				t.Fatalf("held and current token IDs %q after the refresh, want t-1 t-2", got)
			}
		})
	}
}
