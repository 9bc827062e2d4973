package wsguard_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// frameWidth returns a masked frame whose length field is w bytes wide
// (1: 7-bit, 2: 16-bit, 8: 64-bit) whatever the payload's length: RFC 6455
// asks for the shortest, and no client library is held to it.
func frameWidth(b0 byte, w int, payload []byte) []byte {
	b := []byte{b0}
	switch w {
	case 1:
		b = append(b, 0x80|byte(len(payload)))
	case 2:
		b = binary.BigEndian.AppendUint16(append(b, 0x80|126), uint16(len(payload)))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(len(payload)))
	}
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

// messageLog is a handler that records every message it is given.
type messageLog struct {
	mu  sync.Mutex
	got []string
}

func (r *messageLog) ServeMessage(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, string(m.Data))
	return nil
}

func (r *messageLog) seen() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.got, "|")
}

// A half-close anywhere in a fragmented message (in a header, a payload,
// a control frame between fragments) dispatches nothing of it; the whole
// message before it is dispatched.
func TestMessageCutAtAnyByteIsNotDispatched(t *testing.T) {
	t.Parallel()
	first := frameWidth(0x80|wstest.OpText, 1, []byte("first"))
	var msg []byte
	msg = append(msg, frameWidth(wstest.OpText, 2, []byte(strings.Repeat("a", 130)))...)
	msg = append(msg, frameWidth(0x80|wstest.OpPing, 1, []byte("p"))...)
	msg = append(msg, frameWidth(wstest.OpContinuation, 8, []byte("bc"))...)
	msg = append(msg, frameWidth(0x80|wstest.OpPong, 1, nil)...)
	msg = append(msg, frameWidth(0x80|wstest.OpContinuation, 1, []byte("d"))...)
	whole := "first|" + strings.Repeat("a", 130) + "bcd"
	for cut := 0; cut <= len(msg); cut++ {
		if cut > 12 && cut < 136 && cut%31 != 0 {
			continue // inside the long payload: a few of its bytes are enough
		}
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			t.Parallel()
			h := &messageLog{}
			ts := start(t, h)
			raw := dialRawOK(t, ts)
			if err := raw.WriteBytes(append(append([]byte(nil), first...), msg[:cut]...)); err != nil {
				t.Fatal(err)
			}
			if err := raw.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			line := closeLine(t, ts.Logs)
			if cut == len(msg) {
				if h.seen() != whole {
					t.Fatalf("handler saw %q, want %q", h.seen(), whole)
				}
				return
			}
			if h.seen() != "first" {
				t.Fatalf("handler saw %q, want only the first message", h.seen())
			}
			if line["code"] != "canceled" || line["close"] != float64(1006) {
				t.Fatalf("closing line %v, want the peer gone (1006)", line)
			}
		})
	}
}

// A stream cut into two reads at any byte, in a header, a mask, a 16- or
// 64-bit length or a close frame's payload, gives the same messages, pong
// and close.
func TestFramesCutAtAnyByte(t *testing.T) {
	t.Parallel()
	var stream []byte
	stream = append(stream, frameWidth(wstest.OpText, 8, []byte("he"))...)
	stream = append(stream, frameWidth(0x80|wstest.OpPing, 2, []byte("pp"))...)
	stream = append(stream, frameWidth(0x80|wstest.OpContinuation, 2, []byte("llo"))...)
	stream = append(stream, frameWidth(0x80|wstest.OpText, 1, []byte("x"))...)
	stream = append(stream, frameWidth(0x80|wstest.OpClose, 1, closePayload(1000, "bye"))...)
	for cut := 1; cut < len(stream); cut++ {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			t.Parallel()
			h := &messageLog{}
			ts := start(t, h)
			raw := dialRawOK(t, ts)
			if err := raw.WriteBytes(stream[:cut]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond) // two reads on the server
			if err := raw.WriteBytes(stream[cut:]); err != nil {
				t.Fatal(err)
			}
			var pong bool
			for {
				f, err := raw.ReadFrame(5 * time.Second)
				if err != nil {
					t.Fatalf("pong %v: %v", pong, err)
				}
				pong = pong || f.Opcode == wstest.OpPong && string(f.Payload) == "pp"
				if f.Opcode == wstest.OpClose {
					if len(f.Payload) < 2 || binary.BigEndian.Uint16(f.Payload) != 1000 {
						t.Fatalf("close %q, want the peer's 1000 echoed", f.Payload)
					}
					break
				}
			}
			closeLine(t, ts.Logs)
			if h.seen() != "hello|x" || !pong {
				t.Fatalf("handler saw %q, pong %v", h.seen(), pong)
			}
		})
	}
}

// Whole messages that arrive before a violation, in the same read, are
// dispatched; then the violation closes with the code table's text.
func TestMessagesBeforeAViolationAreDispatched(t *testing.T) {
	t.Parallel()
	two := append(frameWidth(0x80|wstest.OpText, 1, []byte("m1")), frameWidth(0x80|wstest.OpText, 1, []byte("m2"))...)
	fragments := frameWidth(wstest.OpText, 1, nil)
	for range 10 {
		fragments = append(fragments, frameWidth(wstest.OpContinuation, 1, nil)...)
	}
	for _, tc := range []struct {
		name   string
		bad    []byte
		opts   []wsguard.Option
		status int
		reason string
	}{
		{"RSV bits", frameWidth(0xC1, 1, []byte("x")), nil, 1002, "protocol error"},
		{"close 1005", frameWidth(0x80|wstest.OpClose, 1, closePayload(1005, "")), nil, 1002, "protocol error"},
		{"close 1016", frameWidth(0x80|wstest.OpClose, 1, closePayload(1016, "")), nil, 1002, "protocol error"},
		{"close 2999", frameWidth(0x80|wstest.OpClose, 1, closePayload(2999, "")), nil, 1002, "protocol error"},
		{"close with one byte", frameWidth(0x80|wstest.OpClose, 1, []byte{3}), nil, 1002, "protocol error"},
		{"ping of 126 bytes, 16-bit length", frameWidth(0x80|wstest.OpPing, 2, make([]byte, 126)), nil, 1002, "protocol error"},
		{"fragmented pong", frameWidth(wstest.OpPong, 1, nil), nil, 1002, "protocol error"},
		{"opcode 7", frameWidth(0x87, 1, nil), nil, 1002, "protocol error"},
		{"opcode 0xF", frameWidth(0x8F, 1, nil), nil, 1002, "protocol error"},
		{"binary inside a text message", append(frameWidth(wstest.OpText, 1, []byte("a")), frameWidth(0x80|wstest.OpBinary, 1, []byte("b"))...), nil, 1002, "protocol error"},
		{"too many frames", fragments, []wsguard.Option{wsguard.WithMaxFrames(4)}, 1009, "message too big"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &messageLog{}
			ts := start(t, h, tc.opts...)
			raw := dialRawOK(t, ts)
			if err := raw.WriteBytes(append(append([]byte(nil), two...), tc.bad...)); err != nil {
				t.Fatal(err)
			}
			status, reason, err := raw.ReadClose(5 * time.Second)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if status != tc.status || reason != tc.reason {
				t.Fatalf("close %d %q, want %d %q", status, reason, tc.status, tc.reason)
			}
			closeLine(t, ts.Logs)
			if h.seen() != "m1|m2" {
				t.Fatalf("handler saw %q, want m1|m2", h.seen())
			}
		})
	}
}

// A close frame the peer may send, in any length encoding and with any
// reason, is echoed with its status and logged as the peer leaving.
func TestPeerCloseFramesAreEchoed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		payload []byte
		width   int
		want    int
	}{
		{"empty", nil, 1, 1005},
		{"1000, 64-bit length", closePayload(1000, ""), 8, 1000},
		{"1014, 16-bit length", closePayload(1014, ""), 2, 1014},
		{"4999 with a 123-byte reason", closePayload(4999, strings.Repeat("r", 123)), 1, 4999},
		{"3000 with a reason of multi-byte characters", closePayload(3000, "né€😀"), 1, 3000},
		// RFC 6455 section 5.5.1: the reason is UTF-8, or the close fails.
		{"3000 with a reason that is not UTF-8", closePayload(3000, "\xff\xfe"), 1, 1007},
		{"3000 with a reason cut in a character", closePayload(3000, "\xe2\x82"), 1, 1007},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, echo)
			raw := dialRawOK(t, ts)
			if err := raw.WriteBytes(frameWidth(0x80|wstest.OpClose, tc.width, tc.payload)); err != nil {
				t.Fatal(err)
			}
			status, _, err := raw.ReadClose(5 * time.Second)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if status != tc.want {
				t.Fatalf("close %d, want %d", status, tc.want)
			}
			line := closeLine(t, ts.Logs)
			if tc.want == 1007 {
				if line["code"] != "invalid_payload" {
					t.Fatalf("closing line %v, want invalid_payload", line)
				}
				return
			}
			if line["code"] != "canceled" || line["level"] != "DEBUG" {
				t.Fatalf("closing line %v, want the peer gone at debug level", line)
			}
		})
	}
}

// A client that answers the server's pings late, but within the idle
// timeout, stays connected; once it stops answering, it is idle.
func TestLatePongsKeepAlive(t *testing.T) {
	t.Parallel()
	const late = 400 * time.Millisecond
	ts := start(t, echo, wsguard.WithPingInterval(100*time.Millisecond), wsguard.WithIdleTimeout(time.Second))
	raw := dialRawOK(t, ts)
	begin := time.Now()
	var answering sync.WaitGroup
	defer answering.Wait()
	for {
		f, err := raw.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", time.Since(begin), err)
		}
		answer := time.Since(begin) < 2*time.Second
		if f.Opcode == wstest.OpClose {
			_ = raw.WriteFrame(true, wstest.OpClose, f.Payload)
			if answer || binary.BigEndian.Uint16(f.Payload) != 1001 {
				t.Fatalf("close %d %q after %v, answering pings: %v", binary.BigEndian.Uint16(f.Payload), f.Payload[2:], time.Since(begin), answer)
			}
			break
		}
		if f.Opcode == wstest.OpPing && answer {
			answering.Go(func() {
				time.Sleep(late)
				_ = raw.WriteFrame(true, wstest.OpPong, f.Payload)
			})
		}
	}
	if line := closeLine(t, ts.Logs); line["code"] != "idle" {
		t.Fatalf("closing line %v", line)
	}
}

// Under Serve, an upgraded connection is not bound by the HTTP server's
// request and keep-alive timeouts: net/http clears the socket's deadlines
// when it is hijacked.
func TestUpgradedConnectionOutlivesRequestTimeouts(t *testing.T) {
	t.Parallel()
	logs := &wstest.Logs{}
	srv := wsguard.New(echo, wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	const d = 100 * time.Millisecond
	addr, _ := serveTest(t, srv, wsguard.WithHTTPServer(func(hs *http.Server) {
		hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout = d, d, d, d
	}))
	c := dial(t, "ws://"+addr+"/", nil)
	for range 3 {
		time.Sleep(2 * d)
		if got := roundTrip(t, c, "x"); got != "Server received: x" {
			t.Fatalf("reply %q", got)
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

// Handshakes the transport refuses get the code table's text, never a
// header back, one log line, and their connection closed.
func TestRefusedHandshakesCloseWithoutEcho(t *testing.T) {
	t.Parallel()
	hostile := "<script>" + strings.Repeat("A\x80\xff", 3000)
	for _, tc := range []struct {
		name string
		set  func(r *http.Request)
	}{
		{"version 8 and hostile", func(r *http.Request) { replaceHeader(r.Header, "Sec-WebSocket-Version", "8"+hostile) }},
		{"POST", func(r *http.Request) { r.Method = http.MethodPost }},
		{"no upgrade", func(r *http.Request) { delete(r.Header, "Upgrade"); delete(r.Header, "Connection") }},
		{"short key", func(r *http.Request) { replaceHeader(r.Header, "Sec-WebSocket-Key", "AAAA") }},
		{"HTTP/1.0", func(r *http.Request) { r.Proto, r.ProtoMinor = "HTTP/1.0", 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, echo)
			u, _ := url.Parse(ts.URL)
			req := wstest.UpgradeRequest(u, nil)
			req.URL.Path = "/"
			tc.set(req)
			nc, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			var b strings.Builder
			fmt.Fprintf(&b, "%s %s %s\r\nHost: %s\r\n", req.Method, req.URL.Path, req.Proto, u.Host)
			for k, vs := range req.Header {
				for _, v := range vs {
					fmt.Fprintf(&b, "%s: %s\r\n", k, v)
				}
			}
			b.WriteString("\r\n")
			if _, err := io.WriteString(nc, b.String()); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			all, err := io.ReadAll(nc) // ends only when the server closes
			if err != nil {
				t.Fatalf("connection not closed: %v (%q)", err, all)
			}
			resp := string(all)
			if !strings.Contains(resp, " 400 Bad Request\r\n") || !strings.HasSuffix(resp, "\r\n\r\nprotocol error") ||
				strings.Contains(resp, "script") || strings.Contains(resp, "AAA") {
				t.Fatalf("response %q, want 400 \"protocol error\" and nothing of the request", resp)
			}
			lines := ts.Logs.Lines(t)
			if len(lines) != 1 || lines[0]["msg"] != "handshake rejected" || lines[0]["code"] != "protocol" {
				t.Fatalf("log:\n%s", ts.Logs)
			}
			if n := len(ts.Logs.String()); n > 6<<10 {
				t.Fatalf("log line of %d bytes", n)
			}
		})
	}
}

// However a handler ends a connection, the connection logs one line.
func TestHandlerEndingsLogOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		h      wsguard.HandlerFunc
		status websocket.StatusCode
		code   string // "" for a close by the application
		level  string
	}{
		{"panic", func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
			panic("boom\n{\"level\":\"INFO\",\"msg\":\"forged\"}")
		}, websocket.StatusInternalError, "internal", "ERROR"},
		{"CloseWithError, then the same error returned", func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
			err := errlog.NewError(errlog.Unauthenticated, fmt.Errorf("revoked"))
			c.CloseWithError(err)
			return err
		}, 4401, "unauthenticated", "INFO"},
		{"Close, then a Send's ErrClosed returned", func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
			_ = c.Close(4000, "bye")
			return c.SendText(ctx, "late")
		}, 4000, "", "DEBUG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, tc.h)
			c := dial(t, ts.URL, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.Read(ctx)
			if s := websocket.CloseStatus(err); s != tc.status {
				t.Fatalf("read %v, want close %d", err, tc.status)
			}
			line := closeLine(t, ts.Logs)
			if code, _ := line["code"].(string); code != tc.code || line["level"] != tc.level {
				t.Fatalf("closing line %v, want code %q at %s", line, tc.code, tc.level)
			}
			waitClosed(t, ts, 0)
			if n := len(ts.Logs.Lines(t)); n != 1 {
				t.Fatalf("%d log lines, want 1:\n%s", n, ts.Logs)
			}
		})
	}
}
