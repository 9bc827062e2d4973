package wsguard_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// guardLog is a JSON log sink that is safe to read while servers write.
type guardLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (g *guardLog) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *guardLog) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

// lines returns the log's lines, each decoded.
func (g *guardLog) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(g.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// oneLine asserts that exactly one line was logged and returns it.
func (g *guardLog) oneLine(t *testing.T) map[string]any {
	t.Helper()
	lines := g.lines(t)
	if len(lines) != 1 {
		t.Fatalf("logged %d lines, want 1:\n%s", len(lines), g.String())
	}
	return lines[0]
}

// newGuardLog returns a sink and a debug-level logger writing to it, so
// that every code's line is kept whatever its level.
func newGuardLog() (*guardLog, *slog.Logger) {
	g := &guardLog{}
	return g, slog.New(slog.NewJSONHandler(g, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// guardClock is a fake clock for deterministic rate tests.
type guardClock struct {
	mu sync.Mutex
	t  time.Time
}

func newGuardClock() *guardClock {
	return &guardClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *guardClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *guardClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// guardRequest returns a handshake-shaped request from remote.
func guardRequest(remote string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://ws.example.com/socket", nil)
	r.RemoteAddr = remote
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	return r
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var guardOK = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
})

func TestRejectEveryCode(t *testing.T) {
	t.Parallel()
	const detail = "secret internal detail"
	for _, code := range errlog.Codes() {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			log, l := newGuardLog()
			w := httptest.NewRecorder()
			wsguard.Reject(w, guardRequest("198.51.100.7:4711"), l, errlog.NewError(code, errors.New(detail)))

			want := code.HTTPStatus()
			if want == 0 {
				want = http.StatusInternalServerError
			}
			if w.Code != want {
				t.Errorf("status = %d, want %d", w.Code, want)
			}
			if got := w.Body.String(); got != code.Text() {
				t.Errorf("body = %q, want %q", got, code.Text())
			}
			if strings.Contains(w.Body.String(), detail) {
				t.Errorf("body %q leaks the error's detail", w.Body.String())
			}
			h := w.Result().Header
			if got := h.Get("Content-Type"); !strings.HasPrefix(got, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", got)
			}
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			wantAuth := ""
			if code == errlog.Unauthenticated {
				wantAuth = `Bearer error="invalid_token"`
			}
			if got := h.Get("WWW-Authenticate"); got != wantAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, wantAuth)
			}
			if got := h.Get("Retry-After"); got != "" {
				t.Errorf("Retry-After = %q for an error without a delay", got)
			}
			line := log.oneLine(t)
			if line[errlog.KeyCode] != code.String() || line[errlog.KeyStatus] != float64(want) {
				t.Errorf("log line %v: want code %s, status %d", line, code, want)
			}
		})
	}
}

func TestRejectText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
		code int
	}{
		{"public text", errlog.NewPublicError(errlog.Unauthenticated, "token expired", errors.New("exp 12:00")), "token expired", 401},
		{"wrapped", errors.Join(errors.New("outer"), errlog.NewError(errlog.TooLarge, nil)), "message too big", 413},
		{"plain error is internal", errors.New("db password is hunter2"), "internal error", 500},
		{"nil error is internal", nil, "internal error", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, l := newGuardLog()
			w := httptest.NewRecorder()
			wsguard.Reject(w, guardRequest("198.51.100.7:4711"), l, tt.err)
			if w.Code != tt.code || w.Body.String() != tt.want {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), tt.code, tt.want)
			}
			log.oneLine(t)
		})
	}
}

func TestRejectLogLine(t *testing.T) {
	t.Parallel()
	const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	r := httptest.NewRequest(http.MethodGet, "http://ws.example.com/socket%0Aforged?access_token="+token, nil)
	r.RemoteAddr = "[::ffff:198.51.100.7]:4711"
	r.Header.Set("Origin", "https://evil.example\n{\"level\":\"INFO\",\"msg\":\"forged\"}")
	r.Header.Set("User-Agent", "bot\r\n\x1b[31m")
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Cookie", "session=cookie-secret")
	log, l := newGuardLog()

	wsguard.Reject(httptest.NewRecorder(), r, l, errlog.NewError(errlog.PermissionDenied, errors.New("origin refused")))

	raw := log.String()
	if strings.Count(raw, "\n") != 1 {
		t.Fatalf("want exactly one log line, got:\n%s", raw)
	}
	for _, secret := range []string{token, "cookie-secret", "access_token"} {
		if strings.Contains(raw, secret) {
			t.Errorf("log line contains %q:\n%s", secret, raw)
		}
	}
	line := log.oneLine(t)
	want := map[string]any{
		"msg":            "handshake rejected",
		"level":          "WARN",
		errlog.KeyCode:   "permission_denied",
		errlog.KeyErr:    "permission_denied: origin refused",
		errlog.KeyRemote: "198.51.100.7",
		errlog.KeyStatus: float64(403),
		errlog.KeyOrigin: `https://evil.example\n{\"level\":\"INFO\",\"msg\":\"forged\"}`,
		errlog.KeyUA:     `bot\r\n\x1b[31m`,
		"path":           `/socket\nforged`,
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %#v, want %#v", k, line[k], v)
		}
	}
	if len(line) != len(want)+1 { // +1: time
		t.Errorf("log line has keys beyond %v: %v", want, line)
	}
}

func TestRejectRemoteFromContext(t *testing.T) {
	t.Parallel()
	log, l := newGuardLog()
	r := guardRequest("10.0.0.1:80")
	r = r.WithContext(wsguard.WithClientIP(r.Context(), mustAddr(t, "203.0.113.9")))
	wsguard.Reject(httptest.NewRecorder(), r, l, errlog.NewError(errlog.PermissionDenied, nil))
	if got := log.oneLine(t)[errlog.KeyRemote]; got != "203.0.113.9" {
		t.Errorf("remote = %v, want the client IP from the context", got)
	}
}
