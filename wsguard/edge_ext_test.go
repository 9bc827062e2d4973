package wsguard_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// dialRawOK opens a raw connection to ts and fails unless it upgraded.
func dialRawOK(t *testing.T, ts *testServer) *wstest.Raw {
	t.Helper()
	raw := wstest.DialRaw(t, ts.URL, nil)
	if raw.Response.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", raw.Response.StatusCode)
	}
	return raw
}

// closePayload returns a close frame's payload: the status, then reason.
func closePayload(status uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, status), reason...)
}

// The transport closes a connection that breaks RFC 6455 with its own error
// text as the reason, one of them echoing the client's byte; the client
// must see the code table's text, and the log keeps the detail.
func TestProtocolErrorsCloseWithTheTableText(t *testing.T) {
	t.Parallel()
	frame := wstest.EncodeFrame
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"RSV1 without an extension", frame(0x80|0x40|wstest.OpText, true, 1, []byte("x"))},
		{"RSV2", frame(0x80|0x20|wstest.OpText, true, 1, []byte("x"))},
		{"RSV3", frame(0x80|0x10|wstest.OpText, true, 1, []byte("x"))},
		{"unmasked frame", frame(0x80|wstest.OpText, false, 2, []byte("hi"))},
		{"reserved data opcode", frame(0x80|0x3, true, 1, []byte("x"))},
		{"reserved control opcode", frame(0x80|0xB, true, 1, []byte("x"))},
		{"continuation without a start", frame(0x80|wstest.OpContinuation, true, 1, []byte("x"))},
		{"new message before the last one ended", append(frame(wstest.OpText, true, 1, []byte("a")), frame(0x80|wstest.OpText, true, 1, []byte("b"))...)},
		{"fragmented ping", frame(wstest.OpPing, true, 1, []byte("x"))},
		{"ping over 125 bytes", frame(0x80|wstest.OpPing, true, 126, make([]byte, 126))},
		{"close with a one-byte payload", frame(0x80|wstest.OpClose, true, 1, []byte{3})},
		{"close with status 1005", frame(0x80|wstest.OpClose, true, 2, closePayload(1005, ""))},
		{"close with status 999", frame(0x80|wstest.OpClose, true, 5, closePayload(999, "<b>"))},
		{"close with status 5000", frame(0x80|wstest.OpClose, true, 2, closePayload(5000, ""))},
		{"length with its top bit set", frame(0x80|wstest.OpText, true, 1<<63, nil)},
		{"header split across writes", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, echo)
			raw := dialRawOK(t, ts)
			if tc.bytes == nil {
				// An RSV bit in a header that arrives one byte at a time.
				for _, b := range frame(0x80|0x40|wstest.OpText, true, 1, []byte("x")) {
					if err := raw.WriteBytes([]byte{b}); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Millisecond)
				}
			} else if err := raw.WriteBytes(tc.bytes); err != nil {
				t.Fatal(err)
			}
			status, reason, err := raw.ReadClose(5 * time.Second)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if status != 1002 || reason != "protocol error" {
				t.Fatalf("close = %d %q, want 1002 \"protocol error\"", status, reason)
			}
			if line := closeLine(t, ts.Logs); line["code"] != "protocol" || line["err"] == "protocol" {
				t.Fatalf("closing line %v, want code protocol with the detail", line)
			}
		})
	}
}

// Frames a client may send in any number and spelling still pass.
func TestFramesWithinTheRulesPass(t *testing.T) {
	t.Parallel()
	ts := start(t, echo)
	raw := dialRawOK(t, ts)
	frame := wstest.EncodeFrame
	var b []byte
	// A message in DefaultMaxFrames frames, a ping between two of them, and
	// the frames' headers in every length encoding.
	b = append(b, frame(wstest.OpText, true, 1, []byte("a"))...)
	b = append(b, frame(0x80|wstest.OpPing, true, 2, []byte("hi"))...)
	for range wsguard.DefaultMaxFrames - 3 {
		b = append(b, frame(wstest.OpContinuation, true, 0, nil)...)
	}
	b = append(b, frame(wstest.OpContinuation, true, 200, make([]byte, 200))...)
	b = append(b, frame(0x80|wstest.OpContinuation, true, 1, []byte("z"))...)
	if err := raw.WriteBytes(b); err != nil {
		t.Fatal(err)
	}
	var pong, reply bool
	for !pong || !reply {
		f, err := raw.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("pong %v, reply %v: %v", pong, reply, err)
		}
		switch f.Opcode {
		case wstest.OpPong:
			pong = string(f.Payload) == "hi"
		case wstest.OpText:
			want := "Server received: a" + string(make([]byte, 200)) + "z"
			if string(f.Payload) != want {
				t.Fatalf("reply of %d bytes, want %d", len(f.Payload), len(want))
			}
			reply = true
		default:
			t.Fatalf("unexpected frame %+v", f)
		}
	}
}

func TestTooManyFramesInOneMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   []wsguard.Option
		frames int
	}{
		{"empty continuation flood, default cap", nil, 100_000},
		{"one over a set cap", []wsguard.Option{wsguard.WithMaxFrames(4)}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, echo, tc.opts...)
			raw := dialRawOK(t, ts)
			b := wstest.EncodeFrame(wstest.OpText, true, 0, nil)
			for range tc.frames - 1 {
				b = append(b, wstest.EncodeFrame(wstest.OpContinuation, true, 0, nil)...)
			}
			// The server stops reading at the cap: the rest may not be taken.
			go func() { _ = raw.WriteBytes(b) }()
			status, reason, err := raw.ReadClose(5 * time.Second)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if status != 1009 || reason != "message too big" {
				t.Fatalf("close = %d %q, want 1009", status, reason)
			}
			if line := closeLine(t, ts.Logs); line["code"] != "too_large" {
				t.Fatalf("closing line %v", line)
			}
		})
	}
}

// Every ping costs the server a write: pings and pongs count against the
// message rate.
func TestPingFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	const burst = 20
	ts := start(t, echo, wsguard.WithMessageRate(1, burst))
	raw := dialRawOK(t, ts)
	var flood []byte
	for i := range 5000 {
		op := byte(wstest.OpPing)
		if i%2 == 1 {
			op = wstest.OpPong
		}
		flood = append(flood, wstest.EncodeFrame(0x80|op, true, 1, []byte("p"))...)
	}
	go func() { _ = raw.WriteBytes(flood) }()
	pongs := 0
	for {
		f, err := raw.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("no close after %d pongs: %v", pongs, err)
		}
		if f.Opcode == wstest.OpPong {
			pongs++
			continue
		}
		if f.Opcode != wstest.OpClose {
			t.Fatalf("frame %+v", f)
		}
		if status := binary.BigEndian.Uint16(f.Payload); status != 4429 || string(f.Payload[2:]) != "rate limit exceeded" {
			t.Fatalf("close %d %q, want 4429", status, f.Payload[2:])
		}
		break
	}
	if pongs > burst {
		t.Fatalf("%d pongs for a burst of %d", pongs, burst)
	}
	if line := closeLine(t, ts.Logs); line["code"] != "resource_exhausted" {
		t.Fatalf("closing line %v", line)
	}
}

// A peer that sends only its own pings and unsolicited pongs, and never
// answers the server's pings, is idle.
func TestPingsFromThePeerDoNotKeepItAlive(t *testing.T) {
	t.Parallel()
	ts := start(t, echo, wsguard.WithPingInterval(50*time.Millisecond), wsguard.WithIdleTimeout(300*time.Millisecond))
	raw := dialRawOK(t, ts)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			op := byte(wstest.OpPing)
			if i%2 == 1 {
				op = wstest.OpPong
			}
			if raw.WriteFrame(true, op, []byte("k")) != nil {
				return
			}
		}
	})
	begin := time.Now()
	for {
		f, err := raw.ReadFrame(5 * time.Second)
		if err != nil || time.Since(begin) > 3*time.Second {
			t.Fatalf("not closed as idle after %v: %v", time.Since(begin), err)
		}
		if f.Opcode == wstest.OpClose {
			if status := binary.BigEndian.Uint16(f.Payload); status != 1001 {
				t.Fatalf("close %d, want 1001", status)
			}
			break
		}
	}
	if line := closeLine(t, ts.Logs); line["code"] != "idle" {
		t.Fatalf("closing line %v", line)
	}
}

// The transport reports a connection cut in the middle of a message as the
// message's end: nothing of such a message may reach the handler.
func TestMessageCutByHalfCloseIsNotDispatched(t *testing.T) {
	t.Parallel()
	frame := wstest.EncodeFrame
	for _, tc := range []struct {
		name  string
		bytes []byte
		want  string // the one message the handler must see, if any
	}{
		{
			name:  "after a non-final fragment",
			bytes: append(frame(wstest.OpText, true, 12, []byte("transfer 100")), frame(wstest.OpContinuation, true, 10, []byte("0 to alice"))...),
		},
		{
			name:  "in the middle of a frame",
			bytes: frame(0x80|wstest.OpText, true, 10_000, []byte(strings.Repeat("x", 4096))),
		},
		{
			name:  "in the middle of a frame header",
			bytes: frame(0x80|wstest.OpText, true, 10_000, nil)[:5],
		},
		{
			name:  "complete message, then a cut one",
			bytes: append(frame(0x80|wstest.OpText, true, 4, []byte("whole")[:4]), frame(wstest.OpText, true, 4, []byte("part"))...),
			want:  "whol",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 4)
			ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
				got <- string(m.Data)
				return nil
			}))
			raw := dialRawOK(t, ts)
			if err := raw.WriteBytes(tc.bytes); err != nil {
				t.Fatal(err)
			}
			if err := raw.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			line := closeLine(t, ts.Logs)
			if line["code"] != "canceled" || line["close"] != float64(1006) {
				t.Fatalf("closing line %v, want the peer gone (1006)", line)
			}
			close(got)
			var seen []string
			for m := range got {
				seen = append(seen, m)
			}
			want := []string(nil)
			if tc.want != "" {
				want = []string{tc.want}
			}
			if fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Fatalf("handler saw %q, want %q", seen, want)
			}
		})
	}
}

// A message that completes just before the client half-closes is whole,
// and the server may still answer it.
func TestCompleteMessageBeforeHalfCloseIsAnswered(t *testing.T) {
	t.Parallel()
	ts := start(t, echo)
	raw := dialRawOK(t, ts)
	if err := raw.WriteBytes(append(wstest.EncodeFrame(wstest.OpText, true, 3, []byte("abc")), wstest.EncodeFrame(0x80, true, 3, []byte("def"))...)); err != nil {
		t.Fatal(err)
	}
	if err := raw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	f, err := raw.ReadFrame(5 * time.Second)
	if err != nil || string(f.Payload) != "Server received: abcdef" {
		t.Fatalf("reply %+v, %v", f, err)
	}
}

// Frames sent in the same packet as the handshake sit in the HTTP server's
// buffer before the upgrade: they are checked like any other.
func TestFramesSentWithTheHandshakeAreChecked(t *testing.T) {
	t.Parallel()
	ts := start(t, echo)
	u, _ := url.Parse(ts.URL)
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var req strings.Builder
	_ = wstest.UpgradeRequest(u, nil).Write(&req)
	b := append([]byte(req.String()), wstest.EncodeFrame(0x80|wstest.OpText, true, 2, []byte("hi"))...)
	b = append(b, wstest.EncodeFrame(0x80|0x40|wstest.OpText, true, 1, []byte("x"))...)
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	all, _ := io.ReadAll(br)
	if !strings.Contains(string(all), "Server received: hi") || !strings.Contains(string(all), "protocol error") {
		t.Fatalf("after the handshake the server sent %q, want the reply, then close 1002", all)
	}
}

// The transport answers a malformed handshake with its error text, which
// quotes the offending header.
func TestRefusedHandshakeAnswersWithTheTableText(t *testing.T) {
	t.Parallel()
	hostile := "<script>alert(1)</script>" + strings.Repeat("A", 512<<10)
	for _, tc := range []struct {
		name string
		set  func(h http.Header)
	}{
		{"hostile key", func(h http.Header) { replaceHeader(h, "Sec-WebSocket-Key", hostile) }},
		{"hostile Connection", func(h http.Header) { replaceHeader(h, "Connection", hostile) }},
		{"hostile Upgrade", func(h http.Header) { replaceHeader(h, "Upgrade", hostile) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, echo)
			u, _ := url.Parse(ts.URL)
			req := wstest.UpgradeRequest(u, nil)
			tc.set(req.Header)
			req.URL = &url.URL{Scheme: "http", Host: u.Host, Path: "/"}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || string(body) != "protocol error" || !resp.Close {
				t.Fatalf("%d %q (close %v), want 400 \"protocol error\" and Connection: close", resp.StatusCode, body, resp.Close)
			}
			lines := ts.Logs.Find(t, "handshake rejected")
			if len(lines) != 1 || lines[0]["code"] != "protocol" {
				t.Fatalf("log lines %v", lines)
			}
		})
	}
}

// replaceHeader sets one value of name, whatever the spelling of the keys
// already in h.
func replaceHeader(h http.Header, name, value string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
	h[name] = []string{value}
}

// A handler's own network error is not this peer leaving: it is an
// internal error, closed with 1011 and logged at error level.
func TestHandlerNetworkErrorIsInternal(t *testing.T) {
	t.Parallel()
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return fmt.Errorf("load orders: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	}))
	c := dial(t, ts.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	if s := websocket.CloseStatus(err); s != websocket.StatusInternalError {
		t.Fatalf("read: %v, want close 1011", err)
	}
	if line := closeLine(t, ts.Logs); line["code"] != "internal" || line["level"] != "ERROR" {
		t.Fatalf("closing line %v", line)
	}
}

// Relaying to a connection that has closed tells the sender so with
// ErrClosed, which carries no code of the closed connection: a handler
// that returns it has made an internal error of its own.
func TestSendToAClosedConnection(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var first *wsguard.Conn
	sendErr := make(chan error, 1)
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if string(m.Data) == "first" {
			first = c
			return c.SendText(ctx, "ok")
		}
		err := first.SendText(ctx, "relayed")
		sendErr <- err
		return err
	}))
	a := dial(t, ts.URL, nil)
	if got := roundTrip(t, a, "first"); got != "ok" {
		t.Fatalf("reply %q", got)
	}
	a.Close(websocket.StatusNormalClosure, "")
	waitClosed(t, ts, 0)

	b := dial(t, ts.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Write(ctx, websocket.MessageText, []byte("relay")); err != nil {
		t.Fatal(err)
	}
	err := <-sendErr
	if !errors.Is(err, wsguard.ErrClosed) {
		t.Fatalf("Send on a closed connection: %v, want ErrClosed", err)
	}
	if code := errlog.CodeOf(err); code != errlog.Internal {
		t.Fatalf("CodeOf(Send error) = %v, want internal", code)
	}
	if _, _, err := b.Read(ctx); websocket.CloseStatus(err) != websocket.StatusInternalError {
		t.Fatalf("sender read %v, want close 1011", err)
	}
}

// waitClosed waits until the server has at most n open connections.
func waitClosed(t *testing.T, ts *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ts.Srv.Open() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", ts.Srv.Open())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A close frame holds a 123-byte reason and only some statuses: Close
// cuts the one and replaces the other, instead of failing and dropping the
// connection without a close frame.
func TestCloseReasonAndStatusAreSendable(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100) // 200 bytes, two per character
	for _, tc := range []struct {
		name       string
		status     websocket.StatusCode
		reason     string
		wantStatus websocket.StatusCode
		wantReason string
		wantErr    bool
	}{
		{"reason over 123 bytes", websocket.StatusNormalClosure, long, websocket.StatusNormalClosure, strings.Repeat("é", 61), false},
		{"reason of 123 bytes", 4000, strings.Repeat("a", 123), 4000, strings.Repeat("a", 123), false},
		{"status 1005", websocket.StatusNoStatusRcvd, "bye", websocket.StatusInternalError, "internal error", true},
		{"status 999", 999, "bye", websocket.StatusInternalError, "internal error", true},
		{"status 5000", 5000, "bye", websocket.StatusInternalError, "internal error", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			closeErr := make(chan error, 1)
			ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
				closeErr <- c.Close(tc.status, tc.reason)
				return nil
			}))
			c := dial(t, ts.URL, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Write(ctx, websocket.MessageText, []byte("close me")); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.Read(ctx)
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != tc.wantStatus || ce.Reason != tc.wantReason {
				t.Fatalf("read %v, want close %d %q", err, tc.wantStatus, tc.wantReason)
			}
			if err := <-closeErr; (err != nil) != tc.wantErr {
				t.Fatalf("Close returned %v, want an error: %v", err, tc.wantErr)
			}
		})
	}
}
