package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"go.uber.org/goleak"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/redistest"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// runMainEnv makes the test binary run main, for TestSignal.
const runMainEnv = "SECURE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

var secret = []byte("example-secret-of-32-bytes-long!")

func mint(t *testing.T, c auth.Claims) string {
	t.Helper()
	tok, err := auth.Sign(jwa.HS256(), secret, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func validFor(sub string, ttl time.Duration) auth.Claims {
	return auth.Claims{Subject: sub, Expiry: time.Now().Add(ttl), IssuedAt: time.Now()}
}

type testServer struct {
	url  string
	ws   *wsguard.Server
	logs *wstest.Logs
	// tokens lists every token the test used, none of which may be logged.
	mu     sync.Mutex
	tokens []string
}

// start serves newServer over httptest with the flags' defaults, the test
// key, and changes made by set.
func start(t *testing.T, set func(*config)) *testServer {
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
	h, ws, err := newServer(c)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	s := &testServer{url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/", ws: ws, logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ws.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, tok := range s.tokens {
			if strings.Contains(logs.String(), tok) {
				t.Errorf("a token is in the log:\n%s", logs)
			}
		}
	})
	return s
}

// use records tok as one that must not be logged.
func (s *testServer) use(tok string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, tok)
	return tok
}

// dialOpts puts tok in the given place: "header", "subprotocol" or
// "message" (none at the handshake).
func dialOpts(place, tok string) *websocket.DialOptions {
	o := &websocket.DialOptions{Subprotocols: []string{"wsguard.v1"}}
	switch place {
	case "header":
		o.HTTPHeader = http.Header{"Authorization": {"Bearer " + tok}}
	case "subprotocol":
		o.Subprotocols = append(o.Subprotocols, "bearer."+tok)
	}
	return o
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect dials and authenticates with tok in place, expecting success.
func connect(t *testing.T, s *testServer, place, tok string) *websocket.Conn {
	t.Helper()
	ctx := ctx5(t)
	c, resp, err := websocket.Dial(ctx, s.url, dialOpts(place, s.use(tok)))
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	if place == "message" {
		if err := c.Write(ctx, websocket.MessageText, []byte(tok)); err != nil {
			t.Fatal(err)
		}
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "Authenticated!" {
		t.Fatalf("greeting %q, %v", b, err)
	}
	return c
}

func echoes(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx := ctx5(t)
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "Server received: "+msg {
		t.Fatalf("reply %q, %v", b, err)
	}
}

// closeStatus reads the server's close, failing on any message before it,
// and returns its status and reason.
func closeStatus(t *testing.T, c *websocket.Conn, within time.Duration) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err == nil {
		t.Fatalf("unexpected message %q", b)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("no close frame: %v", err)
	}
	return ce.Code, ce.Reason
}

// badTokens are the invalid tokens of the issue, each with the reason a
// first-message client gets.
func badTokens(t *testing.T) []struct{ name, tok, reason string } {
	now := time.Now()
	good := validFor("alice", time.Hour)
	with := func(f func(*auth.Claims)) auth.Claims {
		c := good
		f(&c)
		return c
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	other, err := auth.Sign(jwa.HS384(), append(secret, secret[:16]...), good)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auth.Sign(jwa.HS256(), []byte("not-the-server-key-but-32-bytes!"), good)
	if err != nil {
		t.Fatal(err)
	}
	return []struct{ name, tok, reason string }{
		{"bad signature", string(forged), "invalid token"},
		{"alg none", enc(`{"alg":"none","typ":"JWT"}`) + "." + enc(`{"sub":"alice","exp":4102444800}`) + ".", "invalid token"},
		{"another alg", string(other), "invalid token"},
		{"expired", mint(t, with(func(c *auth.Claims) { c.Expiry = now.Add(-time.Minute) })), "token expired"},
		{"no exp", mint(t, with(func(c *auth.Claims) { c.Expiry = time.Time{} })), "invalid token"},
		{"no sub", mint(t, with(func(c *auth.Claims) { c.Subject = "" })), "invalid token"},
		{"nbf in the future", mint(t, with(func(c *auth.Claims) { c.NotBefore = now.Add(time.Minute) })), "invalid token"},
		{"malformed", "not.a.jwt", "invalid token"},
		{"oversized", mint(t, with(func(c *auth.Claims) { c.Extra = map[string]any{"pad": strings.Repeat("x", 9<<10)} })), "invalid token"},
	}
}

func TestHandshakeTokens(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	for _, place := range []string{"header", "subprotocol"} {
		t.Run(place+"/valid", func(t *testing.T) {
			t.Parallel()
			c := connect(t, s, place, mint(t, validFor("alice", time.Hour)))
			if place == "subprotocol" && c.Subprotocol() != "wsguard.v1" {
				t.Fatalf("selected subprotocol %q", c.Subprotocol())
			}
			echoes(t, c, "hello")
		})
		for _, bad := range badTokens(t) {
			if place == "subprotocol" && bad.name == "oversized" {
				continue // covered in the header: the same check, before any place is read
			}
			t.Run(place+"/"+bad.name, func(t *testing.T) {
				t.Parallel()
				_, resp, err := websocket.Dial(ctx5(t), s.url, dialOpts(place, s.use(bad.tok)))
				if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("dial: %v, response %v; want 401 and no upgrade", err, resp)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
					t.Fatalf("WWW-Authenticate %q", got)
				}
				body, _ := io.ReadAll(resp.Body)
				if string(body) != bad.reason {
					t.Fatalf("body %q, want %q", body, bad.reason)
				}
			})
		}
	}
	t.Run("subprotocol without a companion", func(t *testing.T) {
		t.Parallel()
		tok := s.use(mint(t, validFor("alice", time.Hour)))
		_, resp, err := websocket.Dial(ctx5(t), s.url, &websocket.DialOptions{Subprotocols: []string{"bearer." + tok}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial: %v, response %v; want 401", err, resp)
		}
	})
}

func TestFirstMessageTokens(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		echoes(t, connect(t, s, "message", mint(t, validFor("alice", time.Hour))), "hello")
	})
	for _, bad := range badTokens(t) {
		t.Run(bad.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx5(t)
			c, _, err := websocket.Dial(ctx, s.url, dialOpts("message", ""))
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := c.Write(ctx, websocket.MessageText, []byte(s.use(bad.tok))); err != nil {
				t.Fatal(err)
			}
			if code, reason := closeStatus(t, c, 5*time.Second); code != 4401 || reason != bad.reason {
				t.Fatalf("closed %d %q, want 4401 %q", code, reason, bad.reason)
			}
		})
	}
}

func TestIssuerAndAudience(t *testing.T) {
	t.Parallel()
	s := start(t, func(c *config) { c.issuer, c.audience = "https://id.example", "chat" })
	good := validFor("alice", time.Hour)
	good.Issuer, good.Audience = "https://id.example", []string{"chat"}
	echoes(t, connect(t, s, "header", mint(t, good)), "hello")
	for name, c := range map[string]auth.Claims{
		"wrong issuer":   {Subject: "alice", Expiry: good.Expiry, Issuer: "https://evil.example", Audience: good.Audience},
		"wrong audience": {Subject: "alice", Expiry: good.Expiry, Issuer: good.Issuer, Audience: []string{"mail"}},
		"neither":        validFor("alice", time.Hour),
	} {
		_, resp, err := websocket.Dial(ctx5(t), s.url, dialOpts("header", s.use(mint(t, c))))
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: dial %v, response %v; want 401", name, err, resp)
		}
	}
}

// TestSubjectClaim connects with the token of many tutorials,
// {"user_id": 42, "exp": ...}: refused by default for want of a sub,
// accepted with -subject-claim user_id, with 42 as the subject.
func TestSubjectClaim(t *testing.T) {
	t.Parallel()
	tutorial := auth.Claims{Expiry: time.Now().Add(time.Hour), Extra: map[string]any{"user_id": 42}}
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		s := start(t, nil)
		_, resp, err := websocket.Dial(ctx5(t), s.url, dialOpts("header", s.use(mint(t, tutorial))))
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial %v, response %v; want 401", err, resp)
		}
		if !strings.Contains(s.logs.String(), `\"sub\" is required`) {
			t.Fatalf("the log does not say why:\n%s", s.logs)
		}
	})
	t.Run("user_id", func(t *testing.T) {
		t.Parallel()
		c, err := parseFlags([]string{"-subject-claim", "user_id"}, io.Discard)
		if err != nil || c.subjectClaim != "user_id" {
			t.Fatalf("parseFlags: %+v, %v", c, err)
		}
		s := start(t, func(c *config) { c.subjectClaim = "user_id" })
		for _, place := range []string{"header", "message"} {
			conn := connect(t, s, place, mint(t, tutorial))
			echoes(t, conn, "hello")
			_ = conn.Close(websocket.StatusNormalClosure, "")
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if strings.Contains(s.logs.String(), `"sub":"42"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no log line with the subject 42:\n%s", s.logs)
			}
		}
		float := auth.Claims{Expiry: time.Now().Add(time.Hour), Extra: map[string]any{"user_id": 42.5}}
		_, resp, err := websocket.Dial(ctx5(t), s.url, dialOpts("header", s.use(mint(t, float))))
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a fractional user_id: dial %v, response %v; want 401", err, resp)
		}
	})
}

func TestAuthTimeout(t *testing.T) {
	t.Parallel()
	s := start(t, func(c *config) { c.authTimeout = 300 * time.Millisecond })
	c, _, err := websocket.Dial(ctx5(t), s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	begin := time.Now()
	if code, _ := closeStatus(t, c, 5*time.Second); code != 4408 {
		t.Fatalf("closed %d, want 4408", code)
	}
	if d := time.Since(begin); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("closed after %v, want about the 300ms auth timeout", d)
	}
}

func TestExpiryWhileConnected(t *testing.T) {
	t.Parallel()
	const leeway = time.Second
	s := start(t, func(c *config) { c.leeway = leeway })
	for _, place := range []string{"header", "subprotocol", "message"} {
		t.Run(place, func(t *testing.T) {
			t.Parallel()
			// exp has whole seconds: this one is 1 to 2 s away.
			exp := time.Unix(time.Now().Add(2*time.Second).Unix(), 0)
			c := connect(t, s, place, mint(t, auth.Claims{Subject: "alice", Expiry: exp}))
			echoes(t, c, "before expiry")
			code, reason := closeStatus(t, c, 10*time.Second)
			closedAt := time.Now()
			if code != 4401 || reason != "token expired" {
				t.Fatalf("closed %d %q, want 4401 token expired", code, reason)
			}
			if due := exp.Add(leeway); closedAt.Before(due) || closedAt.After(due.Add(time.Second)) {
				t.Fatalf("closed at %v, want within 1s after exp + leeway = %v", closedAt, due)
			}
		})
	}
}

func TestEchoLimits(t *testing.T) {
	t.Parallel()
	s := start(t, func(c *config) { c.readLimit, c.rate, c.burst, c.maxConnsPerIP = 1024, 2, 4, 3 })
	tok := mint(t, validFor("alice", time.Hour))
	authz := http.Header{"Authorization": {"Bearer " + s.use(tok)}}
	for _, tc := range wstest.Abuses(1024) {
		raw := wstest.DialRaw(t, s.url, authz)
		if raw.Response.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%s: handshake %d", tc.Name, raw.Response.StatusCode)
		}
		if err := tc.Send(raw); err != nil {
			t.Fatal(err)
		}
		if status, _, err := raw.ReadClose(5 * time.Second); err != nil || status != tc.Status {
			t.Fatalf("%s: close %d (%v), want %d", tc.Name, status, err, tc.Status)
		}
		raw.Conn.Close() // as a client does once the close handshake is over
	}
	// The server frees a connection's slot once it has served its end.
	for deadline := time.Now().Add(5 * time.Second); s.ws.Open() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", s.ws.Open())
		}
	}

	raw := wstest.DialRaw(t, s.url, http.Header{"Origin": {"https://evil.example"}, "Authorization": authz["Authorization"]})
	if raw.Response.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin handshake: %d, want 403", raw.Response.StatusCode)
	}
	for range 3 {
		connect(t, s, "header", tok)
	}
	raw = wstest.DialRaw(t, s.url, authz)
	if raw.Response.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("connection over the per-IP cap: %d, want 429", raw.Response.StatusCode)
	}
}

func TestRefreshKeepsTheConnection(t *testing.T) {
	t.Parallel()
	s := start(t, func(c *config) { c.leeway = 0 })
	exp := time.Unix(time.Now().Add(2*time.Second).Unix(), 0)
	c := connect(t, s, "header", mint(t, auth.Claims{Subject: "alice", Expiry: exp}))
	ctx := ctx5(t)
	next := s.use(mint(t, validFor("alice", time.Hour)))
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"refresh","token":"`+next+`"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || !strings.HasPrefix(string(b), `{"type":"refreshed","exp":`) {
		t.Fatalf("refresh reply %q, %v", b, err)
	}
	time.Sleep(time.Until(exp) + 500*time.Millisecond)
	echoes(t, c, "after the first token's expiry")
}

// startRun runs the server as main does, on a free port, and returns the
// lines it printed once it is listening.
func startRun(t *testing.T, env map[string]string, args ...string) (url string, stdout []string) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	br := bufio.NewReader(pr)
	lines := 1
	if env[secretEnv] == "" {
		lines = 5
	}
	for range lines {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("server output: %v", err)
		}
		stdout = append(stdout, strings.TrimSpace(line))
	}
	go io.Copy(io.Discard, br)
	return strings.TrimPrefix(stdout[0], "secure: listening on "), stdout
}

// TestDemoToken runs the printed client command with the printed token.
// It is not parallel: building the client takes the CPU that the timing
// tests need.
func TestDemoToken(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "secure.log")
	url, out := startRun(t, nil, "-log-file", logFile)
	tok := out[2]
	cmdLine := strings.TrimPrefix(out[3], "secure: try it from the repository root (type lines, Ctrl-D to quit): ")
	want := "go run ./examples/secure/client -url " + url + " -token " + tok
	if cmdLine != want {
		t.Fatalf("printed command %q, want %q", cmdLine, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := strings.Fields(strings.Replace(cmdLine, "./examples/secure/client", "./client", 1))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader("hello\n")
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdLine, err, got)
	}
	if string(got) != "Authenticated!\nServer received: hello\n" {
		t.Fatalf("client printed %q", got)
	}
	// A bad token is refused, and neither token reaches the log.
	_, resp, err := websocket.Dial(ctx, url, dialOpts("header", tok[:len(tok)-4]+"AAAA"))
	if err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged token: %v, %v", err, resp)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		if strings.Contains(string(b), "handshake rejected") || time.Now().After(deadline) {
			if !strings.Contains(string(b), "handshake rejected") || strings.Contains(string(b), tok[:40]) {
				t.Fatalf("log file:\n%s", b)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSecretFromEnv(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0"},
		func(string) string { return "too short" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Fatalf("run with a short key: %v", err)
	}
	url, out := startRun(t, map[string]string{secretEnv: string(secret)})
	if len(out) != 1 {
		t.Fatalf("printed %q; with a configured key nothing but the address", out)
	}
	c, _, err := websocket.Dial(ctx5(t), url, dialOpts("header", mint(t, validFor("alice", time.Minute))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, b, err := c.Read(ctx5(t)); err != nil || string(b) != "Authenticated!" {
		t.Fatalf("greeting %q, %v", b, err)
	}
}

// TestSignal runs the real binary: SIGTERM closes every connection with
// 1001 and the process exits 0.
func TestSignal(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-addr", "127.0.0.1:0", "-shutdown-timeout", "2s")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", secretEnv+"="+string(secret))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	br := bufio.NewReader(stdout)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("server output: %v", err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "secure: listening on "))
	var conns []*websocket.Conn
	for range 3 {
		c, _, err := websocket.Dial(ctx5(t), url, dialOpts("header", mint(t, validFor("alice", time.Hour))))
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if _, _, err := c.Read(ctx5(t)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if code, _ := closeStatus(t, c, 5*time.Second); code != websocket.StatusGoingAway {
			t.Fatalf("closed %d, want 1001", code)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v, want 0", err)
	}
}

// startPrinting runs the server as main does, with the test key, and
// returns what it printed after each prefix once every prefix was printed.
func startPrinting(t *testing.T, args []string, prefixes ...string) []string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...),
			func(k string) string { return map[string]string{secretEnv: string(secret)}[k] }, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	br := bufio.NewReader(pr)
	got := make([]string, len(prefixes))
	for missing := len(prefixes); missing > 0; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("server output: %v", err)
		}
		for i, p := range prefixes {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), p); ok && got[i] == "" {
				got[i] = rest
				missing--
			}
		}
	}
	go io.Copy(io.Discard, br)
	return got
}

// TestMetricsListener scrapes -metrics-addr after a scripted session.
func TestMetricsListener(t *testing.T) {
	t.Parallel()
	got := startPrinting(t, []string{"-metrics-addr", "127.0.0.1:0"}, "secure: listening on ", "secure: metrics at ")
	url, metricsURL := got[0], got[1]

	c, _, err := websocket.Dial(ctx5(t), url, dialOpts("header", mint(t, validFor("alice", time.Minute))))
	if err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx5(t)); err != nil || string(b) != "Authenticated!" {
		t.Fatalf("greeting %q, %v", b, err)
	}
	echoes(t, c, "one")
	echoes(t, c, "two")
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := websocket.Dial(ctx5(t), url, dialOpts("header", "not-a-token")); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token: %v", err)
	}

	want := []string{
		`wsguard_handshakes_total{code="",result="accepted"} 1`,
		`wsguard_handshakes_total{code="unauthenticated",result="rejected"} 1`,
		`wsguard_messages_total{direction="in"} 2`,
		`wsguard_connections_open 0`,
		`wsguard_auth_failures_total{reason="invalid token"} 1`,
	}
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(metricsURL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		missing := slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(body, w) })
		if !missing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack some of %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "alice") || strings.Contains(body, "127.0.0.1") {
		t.Fatal("a subject or an IP became a label")
	}
}

// TestTwoInstancesShareRedis runs two servers on one Redis: the per-IP cap
// is one cap across both.
func TestTwoInstancesShareRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	args := []string{"-redis-addr", rs.Addr, "-max-conns-per-ip", "1"}
	a := startPrinting(t, args, "secure: listening on ")[0]
	b := startPrinting(t, args, "secure: listening on ")[0]

	c, _, err := websocket.Dial(ctx5(t), a, dialOpts("header", mint(t, validFor("alice", time.Minute))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	_, resp, err := websocket.Dial(ctx5(t), b, dialOpts("header", mint(t, validFor("bob", time.Minute))))
	if err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second connection from the same IP on the other instance: %v, %v", err, resp)
	}
}
