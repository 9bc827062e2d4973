package wsguard_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// echo is the echo server's handler: text M -> "Server received: M".
var echo = wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	return c.Send(ctx, m.Type, append([]byte("Server received: "), m.Data...))
})

type testServer struct {
	URL  string
	Srv  *wsguard.Server
	Logs *wstest.Logs
}

// start serves h over httptest with every default guard plus opts, logging
// at debug level into a buffer the test can read.
func start(t *testing.T, h wsguard.Handler, opts ...wsguard.Option) *testServer {
	t.Helper()
	logs := &wstest.Logs{}
	opts = append([]wsguard.Option{wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug))}, opts...)
	srv := wsguard.New(h, opts...)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return &testServer{URL: "ws" + strings.TrimPrefix(ts.URL, "http"), Srv: srv, Logs: logs}
}

func dial(t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func roundTrip(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// closeLine waits for the connection's closing log line.
func closeLine(t *testing.T, logs *wstest.Logs) map[string]any {
	t.Helper()
	// Up to the close handshake's own 5 s wait, for a peer that does not answer.
	lines := logs.WaitFor(t, "connection closed", 10*time.Second)
	if len(lines) != 1 {
		t.Fatalf("want one closing log line, got %d:\n%s", len(lines), logs)
	}
	return lines[0]
}

func TestEcho(t *testing.T) {
	t.Parallel()
	ts := start(t, echo)
	c := dial(t, ts.URL, &websocket.DialOptions{CompressionMode: websocket.CompressionContextTakeover})
	if got := roundTrip(t, c, "hello"); got != "Server received: hello" {
		t.Fatalf("reply = %q", got)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	line := closeLine(t, ts.Logs)
	if line["level"] != "DEBUG" || line["code"] != "canceled" || line["close"] != float64(1000) {
		t.Fatalf("a peer's normal close must log at debug: %v", line)
	}
}

func TestCompressionNeverNegotiated(t *testing.T) {
	t.Parallel()
	ts := start(t, echo)
	raw := wstest.DialRaw(t, ts.URL, http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate; client_max_window_bits"}})
	if raw.Response.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d", raw.Response.StatusCode)
	}
	if ext := raw.Response.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("server negotiated %q", ext)
	}
}

func TestSubprotocolNegotiation(t *testing.T) {
	t.Parallel()
	ts := start(t, echo, wsguard.WithSubprotocols("chat.v2", "chat.v1"))
	for _, tc := range []struct {
		name  string
		offer []string
		want  string
	}{
		{"server preference wins", []string{"chat.v1", "chat.v2"}, "chat.v2"},
		{"only known one selected", []string{"other", "chat.v1"}, "chat.v1"},
		{"none known", []string{"other"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.URL, &websocket.DialOptions{Subprotocols: tc.offer})
			if got := c.Subprotocol(); got != tc.want {
				t.Fatalf("subprotocol = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCloseCodes drives each kind of bad input with hand-written frames and
// checks the close status, the reason the client sees and the one log line.
func TestCloseCodes(t *testing.T) {
	t.Parallel()
	var handler wsguard.HandlerFunc = func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		switch string(m.Data) {
		case "panic":
			panic("handler bug")
		case "unauthenticated":
			return errlog.NewError(errlog.Unauthenticated, errors.New("secret detail"))
		}
		return echo(ctx, c, m)
	}
	big := make([]byte, wsguard.DefaultReadLimit+1)
	for i := range big {
		big[i] = 'a'
	}
	for _, tc := range []struct {
		name       string
		opts       []wsguard.Option
		send       func(*wstest.Raw) error
		status     int
		reason     string
		code       string
		hasPayload bool
	}{
		{
			name:   "binary on a text endpoint",
			send:   func(r *wstest.Raw) error { return r.WriteFrame(true, wstest.OpBinary, []byte{1, 2, 3}) },
			status: 1003, reason: "unsupported message", code: "unsupported",
		},
		{
			name:   "over the read limit",
			send:   func(r *wstest.Raw) error { return r.WriteFrame(true, wstest.OpText, big) },
			status: 1009, reason: "message too big", code: "too_large",
		},
		{
			name: "frame header announcing a terabyte",
			send: func(r *wstest.Raw) error {
				return r.WriteFrameHeader(true, wstest.OpText, 1<<40, big)
			},
			status: 1009, code: "too_large",
		},
		{
			name: "fragments adding up past the limit",
			send: func(r *wstest.Raw) error {
				op := byte(wstest.OpText)
				for range 3 {
					if err := r.WriteFrame(false, op, big[:wsguard.DefaultReadLimit/2]); err != nil {
						return err
					}
					op = wstest.OpContinuation
				}
				return r.WriteFrame(true, wstest.OpContinuation, []byte("x"))
			},
			status: 1009, reason: "message too big", code: "too_large",
		},
		{
			name:   "invalid UTF-8",
			send:   func(r *wstest.Raw) error { return r.WriteFrame(true, wstest.OpText, []byte{'o', 'k', 0xff, 0xfe}) },
			status: 1007, reason: "invalid UTF-8", code: "invalid_payload", hasPayload: true,
		},
		{
			name: "UTF-8 sequence split across fragments is valid",
			send: func(r *wstest.Raw) error {
				if err := r.WriteFrame(false, wstest.OpText, []byte{0xc3}); err != nil {
					return err
				}
				if err := r.WriteFrame(true, wstest.OpContinuation, []byte{0xa9}); err != nil {
					return err
				}
				return r.WriteFrame(true, wstest.OpText, []byte("panic"))
			},
			status: 1011, reason: "internal error", code: "internal", hasPayload: true,
		},
		{
			name:   "handler panic",
			send:   func(r *wstest.Raw) error { return r.WriteFrame(true, wstest.OpText, []byte("panic")) },
			status: 1011, reason: "internal error", code: "internal", hasPayload: true,
		},
		{
			name:   "handler error keeps its code's status and hides its detail",
			send:   func(r *wstest.Raw) error { return r.WriteFrame(true, wstest.OpText, []byte("unauthenticated")) },
			status: 4401, reason: "invalid token", code: "unauthenticated", hasPayload: true,
		},
		{
			name: "message flood",
			opts: []wsguard.Option{wsguard.WithMessageRate(1, 3)},
			send: func(r *wstest.Raw) error {
				for range 10 {
					if err := r.WriteFrame(true, wstest.OpText, []byte("hi")); err != nil {
						return err
					}
				}
				return nil
			},
			status: 4429, reason: "rate limit exceeded", code: "resource_exhausted",
		},
		{
			name:   "reserved opcode",
			send:   func(r *wstest.Raw) error { return r.WriteFrame(true, 0x3, []byte("x")) },
			status: 1002, code: "protocol",
		},
		{
			name:   "continuation without a start",
			send:   func(r *wstest.Raw) error { return r.WriteFrame(true, wstest.OpContinuation, []byte("x")) },
			status: 1002, code: "protocol",
		},
		{
			name:   "fragmented ping",
			send:   func(r *wstest.Raw) error { return r.WriteFrame(false, wstest.OpPing, []byte("x")) },
			status: 1002, code: "protocol",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, handler, tc.opts...)
			raw := wstest.DialRaw(t, ts.URL, nil)
			if raw.Response.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake status %d", raw.Response.StatusCode)
			}
			if err := tc.send(raw); err != nil {
				t.Fatalf("send: %v", err)
			}
			status, reason, err := raw.ReadClose(10 * time.Second)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if status != tc.status || (tc.reason != "" && reason != tc.reason) {
				t.Fatalf("close = %d %q, want %d %q", status, reason, tc.status, tc.reason)
			}
			line := closeLine(t, ts.Logs)
			if line["code"] != tc.code {
				t.Fatalf("logged code %v, want %s: %v", line["code"], tc.code, line)
			}
			if _, ok := line["payload_sha256"]; ok != tc.hasPayload {
				t.Fatalf("payload_sha256 logged: %v, want %v: %v", ok, tc.hasPayload, line)
			}
			if strings.Contains(ts.Logs.String(), "aaaa") {
				t.Fatal("the log contains the payload")
			}
		})
	}
}

func TestInvalidMessagesAreRepliesUntilTooManyInARow(t *testing.T) {
	t.Parallel()
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		if strings.HasPrefix(string(m.Data), "bad") {
			return errlog.NewError(errlog.InvalidArgument, errors.New("rejected "+string(m.Data)))
		}
		return echo(ctx, c, m)
	}))
	c := dial(t, ts.URL, nil)
	for round := range 2 {
		for i := range wsguard.DefaultMaxInvalid - 1 {
			raw := roundTrip(t, c, "bad-secret-value")
			if strings.Contains(raw, "secret-value") {
				t.Fatalf("the reply echoes the message or the error's detail: %s", raw)
			}
			var reply map[string]any
			if err := json.Unmarshal([]byte(raw), &reply); err != nil {
				t.Fatal(err)
			}
			if reply["type"] != "error" || reply["code"] != "invalid_argument" {
				t.Fatalf("round %d, message %d: reply %v", round, i, reply)
			}
		}
		if got := roundTrip(t, c, "good"); got != "Server received: good" {
			t.Fatalf("a valid message must reset the count: %q", got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range wsguard.DefaultMaxInvalid {
		if err := c.Write(ctx, websocket.MessageText, []byte("bad")); err != nil {
			t.Fatal(err)
		}
	}
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
				t.Fatalf("close = %v (%v), want 1008", got, err)
			}
			break
		}
	}
	if lines := ts.Logs.Find(t, "message rejected"); len(lines) != 2*(wsguard.DefaultMaxInvalid-1)+wsguard.DefaultMaxInvalid-1 {
		t.Fatalf("want one log line per rejected message, got %d", len(lines))
	}
	if line := closeLine(t, ts.Logs); line["code"] != "policy_violation" || line["payload_sha256"] == nil {
		t.Fatalf("closing line %v", line)
	}
}

func TestIdleConnectionIsClosed(t *testing.T) {
	t.Parallel()
	ts := start(t, echo, wsguard.WithPingInterval(50*time.Millisecond), wsguard.WithIdleTimeout(300*time.Millisecond))

	// A raw client never answers pings.
	raw := wstest.DialRaw(t, ts.URL, nil)
	pings := 0
	for {
		f, err := raw.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("no close from the server: %v", err)
		}
		if f.Opcode == wstest.OpPing {
			pings++
			continue
		}
		if f.Opcode != wstest.OpClose || len(f.Payload) < 2 || int(f.Payload[0])<<8|int(f.Payload[1]) != 1001 {
			t.Fatalf("frame %+v, want close 1001", f)
		}
		_ = raw.WriteFrame(true, wstest.OpClose, f.Payload)
		break
	}
	if pings == 0 {
		t.Fatal("the server never pinged")
	}
	if line := closeLine(t, ts.Logs); line["code"] != "idle" || line["close"] != float64(1001) {
		t.Fatalf("closing line %v", line)
	}
}

func TestPingedClientStaysConnected(t *testing.T) {
	t.Parallel()
	ts := start(t, echo, wsguard.WithPingInterval(50*time.Millisecond), wsguard.WithIdleTimeout(400*time.Millisecond))
	c := dial(t, ts.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The client answers pings while a read is pending.
	replies := make(chan string, 1)
	go func() {
		_, b, err := c.Read(ctx)
		if err != nil {
			replies <- err.Error()
			return
		}
		replies <- string(b)
	}()
	time.Sleep(1200 * time.Millisecond) // several idle timeouts, answered by pongs
	if err := c.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if got := <-replies; got != "Server received: still here" {
		t.Fatalf("reply %q", got)
	}
}

func TestPanicDoesNotAffectOtherConnections(t *testing.T) {
	t.Parallel()
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		if string(m.Data) == "panic" {
			panic("boom")
		}
		return echo(ctx, c, m)
	}))
	good := dial(t, ts.URL, nil)
	bad := dial(t, ts.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bad.Write(ctx, websocket.MessageText, []byte("panic")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bad.Read(ctx); websocket.CloseStatus(err) != websocket.StatusInternalError {
		t.Fatalf("panicking connection: %v, want 1011", err)
	}
	if got := roundTrip(t, good, "ok"); got != "Server received: ok" {
		t.Fatalf("other connection: %q", got)
	}
}

func TestWriteTimeoutDropsSlowClient(t *testing.T) {
	t.Parallel()
	chunk := make([]byte, 16<<10)
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		for {
			if err := c.Send(ctx, wsguard.MessageBinary, chunk); err != nil {
				return err
			}
		}
	}), wsguard.WithWriteTimeout(100*time.Millisecond))
	raw := wstest.DialRaw(t, ts.URL, nil)
	if err := raw.WriteFrame(true, wstest.OpText, []byte("flood me")); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing until the server gives up on it.
	line := closeLine(t, ts.Logs)
	if line["code"] != "deadline_exceeded" || line["close"] != float64(1006) {
		t.Fatalf("closing line %v", line)
	}
}

func TestShutdownClosesEveryConnection(t *testing.T) {
	t.Parallel()
	logs := &wstest.Logs{}
	srv := wsguard.New(echo, wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")

	var wg sync.WaitGroup
	var goingAway atomic.Int32
	for range 3 {
		c := dial(t, url, nil)
		roundTrip(t, c, "hi")
		wg.Go(func() {
			_, _, err := c.Read(context.Background())
			if websocket.CloseStatus(err) == websocket.StatusGoingAway {
				goingAway.Add(1)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	if goingAway.Load() != 3 {
		t.Fatalf("%d of 3 connections got 1001", goingAway.Load())
	}
	if srv.Open() != 0 {
		t.Fatalf("%d connections still open", srv.Open())
	}
	raw := wstest.DialRaw(t, url, nil)
	if raw.Response.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake while draining: %d, want 503", raw.Response.StatusCode)
	}
}

func TestShutdownDropsConnectionsThatIgnoreTheClose(t *testing.T) {
	t.Parallel()
	srv := wsguard.New(echo, wsguard.WithLogger(errlog.NewLogger(&wstest.Logs{}, slog.LevelDebug)))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	raw := wstest.DialRaw(t, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if raw.Response.StatusCode != http.StatusSwitchingProtocols {
		t.Fatal(raw.Response.Status)
	}
	for srv.Open() == 0 {
		time.Sleep(time.Millisecond) // the handshake response precedes registration
	}
	// The raw client reads the close frame but never answers it.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if status, _, err := raw.ReadClose(time.Second); err != nil || status != 1001 {
		t.Fatalf("close = %d, %v", status, err)
	}
	if srv.Open() != 0 {
		t.Fatalf("%d connections left", srv.Open())
	}
}

func TestHandshakeGuards(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   []wsguard.Option
		header http.Header
		dials  int // earlier successful handshakes kept open
		status int
	}{
		{name: "same host", status: http.StatusSwitchingProtocols, header: http.Header{}},
		{name: "no Origin (non-browser client)", status: http.StatusSwitchingProtocols},
		{name: "cross origin", header: http.Header{"Origin": {"https://evil.example"}}, status: http.StatusForbidden},
		{name: "null origin", header: http.Header{"Origin": {"null"}}, status: http.StatusForbidden},
		{
			name: "allowed pattern", opts: []wsguard.Option{wsguard.WithOrigins("*.example.org")},
			header: http.Header{"Origin": {"https://app.example.org"}}, status: http.StatusSwitchingProtocols,
		},
		{
			name: "insecure skip", opts: []wsguard.Option{wsguard.InsecureSkipOriginCheck()},
			header: http.Header{"Origin": {"https://evil.example"}}, status: http.StatusSwitchingProtocols,
		},
		{name: "per-IP cap", opts: []wsguard.Option{wsguard.WithMaxConns(10, 2)}, dials: 2, status: http.StatusTooManyRequests},
		{name: "total cap", opts: []wsguard.Option{wsguard.WithMaxConns(2, 10)}, dials: 2, status: http.StatusServiceUnavailable},
		{name: "handshake rate", opts: []wsguard.Option{wsguard.WithHandshakeRate(0.001, 2)}, dials: 2, status: http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, echo, tc.opts...)
			for range tc.dials {
				dial(t, ts.URL, nil)
			}
			h := tc.header
			if h != nil && h.Get("Origin") == "" && tc.name == "same host" {
				h.Set("Origin", "http://"+strings.TrimPrefix(ts.URL, "ws://"))
			}
			raw := wstest.DialRaw(t, ts.URL, h)
			if raw.Response.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", raw.Response.StatusCode, tc.status)
			}
			if tc.status == http.StatusTooManyRequests && raw.Response.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			if tc.status >= 400 {
				if got := ts.Logs.Find(t, "handshake rejected"); len(got) != 1 {
					t.Fatalf("want one log line, got %d:\n%s", len(got), ts.Logs)
				}
			}
		})
	}
}

func TestDigestIsComputedOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	var hashes atomic.Int32
	newHash := func() hash.Hash {
		hashes.Add(1)
		return sha256.New()
	}
	digests := make(chan [2]string, 2)
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		if string(m.Data) == "digest" {
			digests <- [2]string{m.Digest(), m.Digest()}
		}
		return echo(ctx, c, m)
	}), wsguard.WithDigest(newHash))
	c := dial(t, ts.URL, nil)
	for range 10 {
		roundTrip(t, c, "plain")
	}
	if n := hashes.Load(); n != 0 {
		t.Fatalf("%d hashes made though nobody asked for a digest", n)
	}
	roundTrip(t, c, "digest")
	got := <-digests
	want := sha256.Sum256([]byte("digest"))
	if got[0] != hex.EncodeToString(want[:]) || got[1] != got[0] {
		t.Fatalf("digests %v, want %x twice", got, want)
	}
}

func TestConnectHook(t *testing.T) {
	t.Parallel()
	ts := start(t, echo, wsguard.WithConnect(func(ctx context.Context, c *wsguard.Conn) error {
		if err := c.SendText(ctx, "welcome "+c.ID()); err != nil {
			return err
		}
		return errlog.NewPublicError(errlog.DeadlineExceeded, "timeout", errors.New("no token in time"))
	}))
	c := dial(t, ts.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil || !strings.HasPrefix(string(b), "welcome ") {
		t.Fatalf("greeting %q, %v", b, err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != 4408 {
		t.Fatalf("close %v, want 4408", err)
	}
	line := closeLine(t, ts.Logs)
	if line["conn"] != strings.TrimPrefix(string(b), "welcome ") {
		t.Fatalf("log names conn %v, the client was told %q", line["conn"], b)
	}
}

func TestDisconnectHooks(t *testing.T) {
	t.Parallel()
	type ran struct {
		id    string
		cause error
	}
	hooks := make(chan ran, 4)
	ts := start(t, echo,
		wsguard.WithConnect(func(ctx context.Context, c *wsguard.Conn) error {
			return errlog.NewError(errlog.PermissionDenied, errors.New("refused by the connect hook"))
		}),
		wsguard.WithDisconnect(func(c *wsguard.Conn) { panic("first hook") }),
		wsguard.WithDisconnect(func(c *wsguard.Conn) {
			hooks <- ran{c.ID(), context.Cause(c.Context())}
		}))
	c := dial(t, ts.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != 4403 {
		t.Fatalf("close %v, want 4403", err)
	}
	line := closeLine(t, ts.Logs)
	select {
	case h := <-hooks:
		if h.id != line["conn"] || errlog.CodeOf(h.cause) != errlog.PermissionDenied {
			t.Fatalf("hook saw conn %s, cause %v; the connection was %v", h.id, h.cause, line["conn"])
		}
	default:
		t.Fatal("the second disconnect hook did not run before the closing line")
	}
	panics := ts.Logs.Find(t, "disconnect hook failed")
	if len(panics) != 1 || panics[0]["code"] != "internal" || !strings.Contains(panics[0]["err"].(string), "first hook") {
		t.Fatalf("panic lines %v", panics)
	}
	if len(hooks) != 0 {
		t.Fatal("a disconnect hook ran twice")
	}
}

func TestChainOrder(t *testing.T) {
	t.Parallel()
	var trace []string
	mw := func(name string) wsguard.Middleware {
		return func(next wsguard.Handler) wsguard.Handler {
			return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
				trace = append(trace, name)
				return next.ServeMessage(ctx, c, m)
			})
		}
	}
	base := wsguard.NewChain(mw("a"), mw("b"))
	extended := base.Append(mw("c"))
	_ = base.Append(mw("not in extended"))
	h := extended.ThenFunc(func(context.Context, *wsguard.Conn, *wsguard.Message) error {
		trace = append(trace, "handler")
		return nil
	})
	if err := h.ServeMessage(context.Background(), nil, &wsguard.Message{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(trace, ","); got != "a,b,c,handler" {
		t.Fatalf("order %s", got)
	}
}

func TestSubjectAndContextValues(t *testing.T) {
	t.Parallel()
	type key struct{}
	got := make(chan string, 1)
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		v, _ := ctx.Value(key{}).(string)
		got <- v + "/" + c.Subject()
		return errlog.NewError(errlog.PermissionDenied, errors.New("not allowed"))
	}), wsguard.WithHandshake(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), key{}, "value")
			next.ServeHTTP(w, r.WithContext(wsguard.WithSubject(ctx, "alice")))
		})
	}))
	c := dial(t, ts.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "value/alice" {
		t.Fatalf("handler saw %q", v)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != 4403 {
		t.Fatalf("close %v, want 4403", err)
	}
	if line := closeLine(t, ts.Logs); line["sub"] != "alice" || line["close"] != float64(4403) {
		t.Fatalf("closing line %v", line)
	}
}
