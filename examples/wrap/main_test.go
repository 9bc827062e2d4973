package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"go.uber.org/goleak"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var secret = []byte("wrap-secret-of-exactly-32-bytes!")

func mint(t *testing.T, sub string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign(jwa.HS256(), secret, auth.Claims{Subject: sub, Expiry: time.Now().Add(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// start serves newHandler with the flags' defaults changed by set.
func start(t *testing.T, set func(*config)) (string, *wstest.Logs) {
	t.Helper()
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &wstest.Logs{}
	c.secret, c.logger = secret, errlog.NewLogger(logs, slog.LevelDebug)
	if set != nil {
		set(&c)
	}
	srv, h, err := newHandler(c)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/", logs
}

func dial(url string, header http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	return d.Dial(url, header)
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func echoes(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.ReadMessage(); err != nil || string(b) != "Server received: "+msg {
		t.Fatalf("reply %q, %v", b, err)
	}
}

func TestAuthenticatedClients(t *testing.T) {
	t.Parallel()
	url, logs := start(t, nil)
	tok := mint(t, "alice", time.Hour)
	tests := []struct {
		name      string
		header    http.Header
		protocols []string
		selected  string
	}{
		{"Authorization header", bearer(tok), nil, ""},
		{"subprotocol", nil, []string{"wsguard.v1", "bearer." + tok}, "wsguard.v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, resp, err := dial(url, tt.header, tt.protocols...)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tt.selected {
				t.Fatalf("selected subprotocol %q, want %q", got, tt.selected)
			}
			echoes(t, c, "hello")
		})
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the token is in the log:\n%s", logs)
		}
	})
}

func TestRefusedHandshakes(t *testing.T) {
	t.Parallel()
	good := mint(t, "alice", time.Hour)
	tests := []struct {
		name      string
		set       func(*config)
		header    http.Header
		protocols []string
		before    int // handshakes with the good token made first
		status    int
		body      string
	}{
		{"no token", nil, nil, nil, 0, http.StatusUnauthorized, "invalid token"},
		{"forged token", nil, bearer(good[:len(good)-4] + "AAAA"), nil, 0, http.StatusUnauthorized, "invalid token"},
		{"expired token", nil, bearer(mint(t, "alice", -time.Hour)), nil, 0, http.StatusUnauthorized, "token expired"},
		{"token subprotocol alone", nil, nil, []string{"bearer." + good}, 0, http.StatusUnauthorized, "invalid token"},
		{"cross-origin page", nil, http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://evil.example"}},
			nil, 0, http.StatusForbidden, "forbidden"},
		{"allowed origin", func(c *config) { c.origins = "app.example" },
			http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://app.example"}}, nil, 0, http.StatusSwitchingProtocols, ""},
		{"over the per-IP connection cap", func(c *config) { c.maxConnsPerIP = 2 }, bearer(good), nil, 2,
			http.StatusTooManyRequests, "rate limit exceeded"},
		{"over the handshake rate", func(c *config) { c.handshakeRate, c.handshakeBurst = 0.01, 2 }, bearer(good), nil, 2,
			http.StatusTooManyRequests, "rate limit exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, logs := start(t, tt.set)
			for range tt.before {
				c, _, err := dial(url, bearer(good), "wsguard.v1")
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			c, resp, err := dial(url, tt.header, tt.protocols...)
			if err == nil {
				defer c.Close()
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("dial: %v, response %v; want %d", err, resp, tt.status)
			}
			if tt.status == http.StatusSwitchingProtocols {
				echoes(t, c, "hi")
				return
			}
			body, _ := io.ReadAll(resp.Body)
			if string(body) != tt.body {
				t.Fatalf("body %q, want %q", body, tt.body)
			}
			if tt.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
			if strings.Contains(logs.String(), good) {
				t.Fatalf("the token is in the log:\n%s", logs)
			}
			if len(logs.Find(t, "handshake rejected")) != 1 {
				t.Fatalf("want one log line for the refusal:\n%s", logs)
			}
		})
	}
}

func TestRunPrintsADemoToken(t *testing.T) {
	t.Parallel()
	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	var lines []string
	for range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	go io.Copy(io.Discard, br)
	f := strings.Fields(lines[2])
	if len(f) != 7 || f[4] != strings.TrimPrefix(lines[0], "wrap: listening on ") {
		t.Fatalf("printed %q", lines)
	}
	c, _, err := dial(f[4], bearer(f[6]), "wsguard.v1")
	if err != nil {
		t.Fatalf("the demo token does not work: %v", err)
	}
	echoes(t, c, "hello")
	c.Close()
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestOneBudgetForBothPaths(t *testing.T) {
	t.Parallel()
	tok := mint(t, "alice", time.Hour)
	tests := []struct{ name, first, then string }{
		{"legacy then v2", "", "v2"},
		{"v2 then legacy", "v2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, _ := start(t, func(c *config) { c.maxConnsPerIP = 1 })
			c, _, err := dial(url+tt.first, bearer(tok), "wsguard.v1")
			if err != nil {
				t.Fatal(err)
			}
			echoes(t, c, "hi")
			c2, resp, err := dial(url+tt.then, bearer(tok))
			if err == nil {
				c2.Close()
			}
			if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("second connection: %v, %v; want 429", resp, err)
			}
			c.Close()
			deadline := time.Now().Add(5 * time.Second)
			for {
				c2, _, err := dial(url+tt.then, bearer(tok))
				if err == nil {
					echoes(t, c2, "again")
					c2.Close()
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("the slot was not released: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
