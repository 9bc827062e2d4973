package wsguard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// TestGuardsGorillaEndToEnd puts every guard in front of a handler written
// with gorilla/websocket and dials it with gorilla's client. The test is the
// trusted proxy: X-Forwarded-For names the client of each dial.
func TestGuardsGorillaEndToEnd(t *testing.T) {
	t.Parallel()
	log, logger := newGuardLog()
	clock := newGuardClock()

	realIP, err := wsguard.NewRealIP([]string{"127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	filter, err := wsguard.NewIPFilter(nil, []string{"198.51.100.66"})
	if err != nil {
		t.Fatal(err)
	}
	rate := wsguard.NewHandshakeLimit(1, 3, wsguard.WithGuardClock(clock.Now))
	conns := wsguard.NewConnLimit(100, 2)
	origins, err := wsguard.NewOriginCheck([]string{"app.example.com"})
	if err != nil {
		t.Fatal(err)
	}

	// The OriginCheck in front decides; gorilla's own same-host check would
	// refuse the cross-origin app.example.com that the policy allows.
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(1 << 10)
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, p); err != nil {
				return
			}
		}
	})
	chain := wsguard.Instrument(logger, nil)(realIP.Handler(filter.Handler(rate.Handler(conns.Handler(origins.Handler(echo))))))

	// finished receives once per request, after every guard has returned,
	// so that the test knows a connection's slot is free again.
	finished := make(chan struct{}, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chain.ServeHTTP(w, r)
		finished <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	wait := func(t *testing.T) {
		t.Helper()
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			t.Fatal("the server did not finish a request")
		}
	}
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	dial := func(t *testing.T, client, origin string) (*websocket.Conn, *http.Response, error) {
		t.Helper()
		h := http.Header{"X-Forwarded-For": {client}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := dialer.Dial(url, h)
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
		return c, resp, err
	}
	hangUp := func(t *testing.T, c *websocket.Conn) {
		t.Helper()
		_ = c.Close()
		wait(t)
	}
	refused := func(t *testing.T, client, origin string, code errlog.Code, retryAfter string) {
		t.Helper()
		status := code.HTTPStatus()
		c, resp, err := dial(t, client, origin)
		if err == nil {
			hangUp(t, c)
			t.Fatalf("dial as %s from %q succeeded, want %d", client, origin, status)
		}
		wait(t)
		if resp == nil {
			t.Fatalf("dial as %s: %v, want an HTTP %d", client, err, status)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status || resp.Header.Get("Retry-After") != retryAfter {
			t.Errorf("dial as %s: %d Retry-After %q, want %d Retry-After %q",
				client, resp.StatusCode, resp.Header.Get("Retry-After"), status, retryAfter)
		}
		if string(body) != code.Text() {
			t.Errorf("body = %q, want %q", body, code.Text())
		}
	}

	t.Run("allowed origin echoes", func(t *testing.T) {
		c, _, err := dial(t, "203.0.113.1", "https://app.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if mt, p, err := c.ReadMessage(); err != nil || mt != websocket.TextMessage || string(p) != "hello" {
			t.Fatalf("echo = %d %q %v", mt, p, err)
		}
		hangUp(t, c)
	})
	t.Run("no Origin echoes", func(t *testing.T) {
		c, _, err := dial(t, "203.0.113.1", "")
		if err != nil {
			t.Fatal(err)
		}
		hangUp(t, c)
	})
	t.Run("cross origin is 403", func(t *testing.T) {
		refused(t, "203.0.113.2", "https://evil.example", errlog.PermissionDenied, "")
	})
	t.Run("denied IP is 403", func(t *testing.T) {
		refused(t, "198.51.100.66", "https://app.example.com", errlog.PermissionDenied, "")
	})
	t.Run("over the per-IP cap is 429", func(t *testing.T) {
		held := make([]*websocket.Conn, 2)
		for i := range held {
			if held[i], _, err = dial(t, "203.0.113.3", "https://app.example.com"); err != nil {
				t.Fatal(err)
			}
		}
		if got := conns.Open(); got != 2 {
			t.Errorf("Open = %d, want 2", got)
		}
		refused(t, "203.0.113.3", "https://app.example.com", errlog.ResourceExhausted, "1")
		for _, c := range held {
			hangUp(t, c)
		}
	})
	t.Run("over the handshake rate is 429", func(t *testing.T) {
		for range 3 {
			c, _, err := dial(t, "203.0.113.4", "https://app.example.com")
			if err != nil {
				t.Fatal(err)
			}
			hangUp(t, c)
		}
		refused(t, "203.0.113.4", "https://app.example.com", errlog.ResourceExhausted, "1")
		clock.Advance(time.Second)
		c, _, err := dial(t, "203.0.113.4", "https://app.example.com")
		if err != nil {
			t.Fatalf("after the refill: %v", err)
		}
		hangUp(t, c)
	})

	if got := conns.Open(); got != 0 {
		t.Errorf("Open = %d after every connection closed", got)
	}
	lines := log.lines(t)
	wantRemotes := []string{"203.0.113.2", "198.51.100.66", "203.0.113.3", "203.0.113.4"}
	if len(lines) != len(wantRemotes) {
		t.Fatalf("logged %d lines for %d rejections:\n%s", len(lines), len(wantRemotes), log.String())
	}
	for i, line := range lines {
		if line["msg"] != "handshake rejected" || line[errlog.KeyRemote] != wantRemotes[i] {
			t.Errorf("line %d = %v, want a rejection of %s", i, line, wantRemotes[i])
		}
	}
}
