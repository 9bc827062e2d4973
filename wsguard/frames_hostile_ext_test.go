package wsguard_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// A frame header costs the client 14 bytes: the message buffer grows with
// the bytes that arrive, not with the length the header announces, or a
// few headers under a large read limit take the server's memory. Not
// parallel: the bytes allocated are counted for the whole process.
func TestAnnouncedLengthIsNotAllocated(t *testing.T) {
	const announced = 256 << 20
	ts := start(t, &messageLog{}, wsguard.WithReadLimit(1<<30))
	raw := dialRawOK(t, ts)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := raw.WriteFrameHeader(true, wstest.OpText, announced, []byte("only these bytes")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server reads the header and what follows
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 32<<20 {
		t.Fatalf("%d bytes allocated for a header announcing %d and 16 bytes of payload", grown, announced)
	}
	if err := raw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if line := closeLine(t, ts.Logs); line["code"] != "canceled" || line["close"] != float64(1006) {
		t.Fatalf("closing line %v, want the message cut short (canceled, 1006)", line)
	}
}

// Only the pong that carries the keepalive ping's own payload keeps a
// quiet client open: a wrong one, the answer to an earlier ping replayed,
// or one sent before the ping proves nothing.
func TestKeepalivePongMustAnswerThePing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		early bool                            // an unsolicited 8-byte pong first
		pong  func(first, ping []byte) []byte // the answer to ping, or nil
		alive bool
	}{
		{"right", false, func(_, p []byte) []byte { return p }, true},
		{"wrong", false, func(_, p []byte) []byte { q := bytes.Clone(p); q[7] ^= 1; return q }, false},
		{"replayed", false, func(first, _ []byte) []byte { return first }, false},
		{"longer", false, func(_, p []byte) []byte { return append(bytes.Clone(p), 0) }, false},
		{"early", true, func([]byte, []byte) []byte { return nil }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const idle = 400 * time.Millisecond
			ts := start(t, echo, wsguard.WithPingInterval(60*time.Millisecond), wsguard.WithIdleTimeout(idle))
			raw := dialRawOK(t, ts)
			if tc.early {
				if err := raw.WriteFrame(true, wstest.OpPong, []byte{0, 0, 0, 0, 0, 0, 0, 1}); err != nil {
					t.Fatal(err)
				}
			}
			begin := time.Now()
			var first []byte
			for time.Since(begin) < 4*idle {
				f, err := raw.ReadFrame(2 * time.Second)
				if err != nil {
					t.Fatalf("after %v: %v", time.Since(begin), err)
				}
				if f.Opcode == wstest.OpClose {
					_ = raw.WriteFrame(true, wstest.OpClose, f.Payload)
					if tc.alive || binary.BigEndian.Uint16(f.Payload) != 1001 {
						t.Fatalf("close %d after %v", binary.BigEndian.Uint16(f.Payload), time.Since(begin))
					}
					if line := closeLine(t, ts.Logs); line["code"] != "idle" {
						t.Fatalf("closing line %v", line)
					}
					return
				}
				if f.Opcode != wstest.OpPing || len(f.Payload) != 8 {
					t.Fatalf("frame %+v, want an 8-byte keepalive ping", f)
				}
				if first == nil {
					first = f.Payload
					if tc.name == "replayed" {
						_ = raw.WriteFrame(true, wstest.OpPong, first)
						continue
					}
				}
				if p := tc.pong(first, f.Payload); p != nil {
					if err := raw.WriteFrame(true, wstest.OpPong, p); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !tc.alive {
				t.Fatalf("open after %v of pongs that answer no ping", time.Since(begin))
			}
		})
	}
}

// A client that floods pings and never reads fills its own socket with
// pongs: the write that blocks is bounded by the write timeout, the
// connection ends as a client that does not read (one line, deadline
// exceeded), and nothing is left running (goleak in TestMain).
func TestPingFloodWithoutReadingEndsOnTheWriteTimeout(t *testing.T) {
	t.Parallel()
	ts := start(t, echo, wsguard.WithMessageRate(1e6, 1e6), wsguard.WithWriteTimeout(200*time.Millisecond))
	raw := dialRawOK(t, ts)
	var flood []byte
	for range 1000 {
		flood = append(flood, wstest.EncodeFrame(0x80|wstest.OpPing, true, 125, bytes.Repeat([]byte("p"), 125))...)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for raw.WriteBytes(flood) == nil {
		}
	})
	line := closeLine(t, ts.Logs)
	if line["code"] != "deadline_exceeded" || line["close"] != float64(1006) {
		t.Fatalf("closing line %v, want the write timeout (deadline_exceeded, 1006)", line)
	}
	waitClosed(t, ts, 0)
	_ = raw.Conn.Close()
}

// A close the server starts (Shutdown, the idle timeout) while the
// reader waits for a frame, or holds part of a header or of a payload,
// still completes: the client gets the close frame, finishes what it was
// sending, echoes the close, and the connection ends with one line.
func TestServerCloseWhileTheReaderIsMidFrame(t *testing.T) {
	t.Parallel()
	frame := frameWidth(0x80|wstest.OpText, 2, []byte(strings.Repeat("m", 6000)))
	for _, by := range []string{"shutdown", "idle"} {
		for _, tc := range []struct {
			name string
			sent int // bytes of frame sent before the close
		}{
			{"waiting", 0},
			{"first byte", 1},
			{"in the length", 3},
			{"in the mask", 6},
			{"in the payload", 100},
			{"in a long payload", 5000},
		} {
			t.Run(by+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				opts := []wsguard.Option{wsguard.WithPingInterval(0)}
				if by == "idle" {
					opts = append(opts, wsguard.WithIdleTimeout(200*time.Millisecond))
				}
				ts := start(t, &messageLog{}, opts...)
				raw := dialRawOK(t, ts)
				if err := raw.WriteBytes(frame[:tc.sent]); err != nil {
					t.Fatal(err)
				}
				stopped := make(chan error, 1)
				if by == "shutdown" {
					time.Sleep(50 * time.Millisecond) // the reader takes the bytes
					go func() {
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						stopped <- ts.Srv.Shutdown(ctx)
					}()
				}
				f, err := raw.ReadFrame(3 * time.Second)
				if err != nil || f.Opcode != wstest.OpClose {
					t.Fatalf("frame %+v, %v: want the close frame", f, err)
				}
				want := 1001
				if status := int(binary.BigEndian.Uint16(f.Payload)); status != want {
					t.Fatalf("close %d, want %d", status, want)
				}
				if tc.sent > 0 {
					if err := raw.WriteBytes(frame[tc.sent:]); err != nil {
						t.Fatal(err)
					}
				}
				if err := raw.WriteFrame(true, wstest.OpClose, f.Payload); err != nil {
					t.Fatal(err)
				}
				line := closeLine(t, ts.Logs)
				if line["close"] != float64(want) {
					t.Fatalf("closing line %v", line)
				}
				if by == "shutdown" {
					if err := <-stopped; err != nil {
						t.Fatalf("Shutdown: %v", err)
					}
				}
				waitClosed(t, ts, 0)
			})
		}
	}
}

// The read limit counts payload bytes, whatever the frames: a message of
// exactly the limit passes and one byte more closes with 1009, spread
// over empty frames or in one long frame read straight into the message.
func TestReadLimitExactlyAndOneOver(t *testing.T) {
	t.Parallel()
	empty := func(limit, n int) [][]byte {
		return [][]byte{
			frameWidth(wstest.OpText, 1, nil),
			frameWidth(wstest.OpContinuation, 2, []byte(strings.Repeat("a", n/2))),
			frameWidth(wstest.OpContinuation, 1, nil),
			frameWidth(wstest.OpContinuation, 8, []byte(strings.Repeat("b", n-n/2))),
			frameWidth(0x80|wstest.OpContinuation, 1, nil),
		}
	}
	long := func(limit, n int) [][]byte {
		return [][]byte{frameWidth(0x80|wstest.OpText, 8, []byte(strings.Repeat("c", n)))}
	}
	longThenEmpty := func(limit, n int) [][]byte {
		return [][]byte{
			frameWidth(wstest.OpText, 2, []byte(strings.Repeat("d", n))),
			frameWidth(0x80|wstest.OpContinuation, 1, nil),
		}
	}
	for _, tc := range []struct {
		name   string
		limit  int
		frames func(limit, n int) [][]byte
	}{
		{"empty frames", 10, empty},
		{"empty frames, long", 9000, empty},
		{"one long frame", 9000, long},
		{"long frame then an empty final one", 5000, longThenEmpty},
		{"limit of one byte", 1, long},
	} {
		for _, over := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s/+%d", tc.name, over), func(t *testing.T) {
				t.Parallel()
				h := &messageLog{}
				ts := start(t, h, wsguard.WithReadLimit(int64(tc.limit)))
				raw := dialRawOK(t, ts)
				var b []byte
				for _, f := range tc.frames(tc.limit, tc.limit+over) {
					b = append(b, f...)
				}
				b = append(b, frameWidth(0x80|wstest.OpText, 1, []byte("z"))...)
				if err := raw.WriteBytes(b); err != nil {
					t.Fatal(err)
				}
				if over == 0 {
					waitSeen(t, h, 2)
					got, ok := strings.CutSuffix(h.seen(), "|z")
					if !ok || len(got) != tc.limit || strings.Trim(got, "abcd") != "" {
						t.Fatalf("handler saw %d bytes %.20q..., want the message of %d and z", len(got), got, tc.limit)
					}
					return
				}
				status, _, err := raw.ReadClose(3 * time.Second)
				if err != nil || status != 1009 {
					t.Fatalf("close %d, %v: want 1009", status, err)
				}
				// The frames after the message, z and the echoed close,
				// complete the close handshake: the server hangs up at
				// once, not after draining a client it took for abusive.
				echoed := time.Now()
				if f, err := raw.ReadFrame(3 * time.Second); err != io.EOF {
					t.Fatalf("after the close: frame %+v, %v; want EOF", f, err)
				}
				if line := closeLine(t, ts.Logs); line["code"] != "too_large" {
					t.Fatalf("closing line %v", line)
				}
				if d := time.Since(echoed); d > 500*time.Millisecond {
					t.Fatalf("connection ended %v after the echoed close", d)
				}
				if h.seen() != "" {
					t.Fatalf("handler saw %d bytes", len(h.seen()))
				}
			})
		}
	}
}

// waitSeen waits until the handler has seen n messages.
func waitSeen(t *testing.T, h *messageLog, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		h.mu.Lock()
		got := len(h.got)
		h.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler saw %d messages, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Pings of 0, 1 and 125 bytes between the fragments of a message, the
// stream written one byte per write: each ping is answered with its own
// payload, in order, before the message's reply.
func TestPingsBetweenFragmentsByteByByte(t *testing.T) {
	t.Parallel()
	pings := [][]byte{nil, []byte("1"), bytes.Repeat([]byte{0xfe}, 125)}
	var stream []byte
	stream = append(stream, frameWidth(wstest.OpText, 1, []byte("he"))...)
	stream = append(stream, frameWidth(0x80|wstest.OpPing, 1, pings[0])...)
	stream = append(stream, frameWidth(wstest.OpContinuation, 8, []byte("l"))...)
	stream = append(stream, frameWidth(0x80|wstest.OpPing, 2, pings[1])...)
	stream = append(stream, frameWidth(0x80|wstest.OpPing, 1, pings[2])...)
	stream = append(stream, frameWidth(0x80|wstest.OpContinuation, 2, []byte("lo"))...)
	ts := start(t, echo)
	raw := dialRawOK(t, ts)
	for i := range stream {
		if err := raw.WriteBytes(stream[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pings {
		f, err := raw.ReadFrame(3 * time.Second)
		if err != nil || f.Opcode != wstest.OpPong || !bytes.Equal(f.Payload, p) {
			t.Fatalf("frame %+v, %v: want the pong of %q", f, err, p)
		}
	}
	f, err := raw.ReadFrame(3 * time.Second)
	if err != nil || f.Opcode != wstest.OpText || string(f.Payload) != "Server received: hello" {
		t.Fatalf("frame %+v, %v: want the reply", f, err)
	}
}

// A close frame between the fragments of a message, short or read
// straight into the message, is echoed; nothing of the message is
// dispatched, and the connection ends as the client's close says.
func TestCloseFrameInsideAMessage(t *testing.T) {
	t.Parallel()
	for _, n := range []int{3, 9000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			h := &messageLog{}
			ts := start(t, h)
			raw := dialRawOK(t, ts)
			var b []byte
			b = append(b, frameWidth(0x80|wstest.OpText, 1, []byte("first"))...)
			b = append(b, frameWidth(wstest.OpText, 8, []byte(strings.Repeat("x", n)))...)
			b = append(b, frameWidth(0x80|wstest.OpClose, 1, closePayload(4000, "gone"))...)
			if err := raw.WriteBytes(b); err != nil {
				t.Fatal(err)
			}
			f, err := raw.ReadFrame(3 * time.Second)
			if err != nil || f.Opcode != wstest.OpClose || !bytes.Equal(f.Payload, closePayload(4000, "gone")) {
				t.Fatalf("frame %+v, %v: want the close echoed", f, err)
			}
			line := closeLine(t, ts.Logs)
			if line["code"] != "canceled" || line["close"] != float64(4000) {
				t.Fatalf("closing line %v", line)
			}
			if h.seen() != "first" {
				t.Fatalf("handler saw %.20q", h.seen())
			}
		})
	}
}

// A handler that closes the connection while the client's next frame is
// half read: the close handshake reads on from there.
func TestHandlerCloseWithAFrameHalfRead(t *testing.T) {
	t.Parallel()
	closer := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Close(4000, "bye")
	})
	next := frameWidth(0x80|wstest.OpText, 2, []byte(strings.Repeat("n", 300)))
	for _, sent := range []int{1, 3, 7, 8, 200} {
		t.Run(fmt.Sprint(sent), func(t *testing.T) {
			t.Parallel()
			ts := start(t, closer)
			raw := dialRawOK(t, ts)
			b := append(frameWidth(0x80|wstest.OpText, 1, []byte("close")), next[:sent]...)
			if err := raw.WriteBytes(b); err != nil {
				t.Fatal(err)
			}
			f, err := raw.ReadFrame(3 * time.Second)
			if err != nil || f.Opcode != wstest.OpClose || binary.BigEndian.Uint16(f.Payload) != 4000 {
				t.Fatalf("frame %+v, %v: want close 4000", f, err)
			}
			if err := raw.WriteBytes(append(bytes.Clone(next[sent:]), frameWidth(0x80|wstest.OpClose, 1, f.Payload)...)); err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			if line := closeLine(t, ts.Logs); line["close"] != float64(4000) {
				t.Fatalf("closing line %v", line)
			}
			if d := time.Since(begin); d > 500*time.Millisecond {
				t.Fatalf("connection ended %v after the echoed close", d)
			}
		})
	}
}

// Over TLS the frames are read through the TLS connection, not the
// socket: a message pipelined behind the handshake, pings between the
// fragments of a long message written a byte at a time, a message one
// byte over the limit and a long frame cut by the client's close_notify
// end as they do in the clear.
func TestFramesOverTLS(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("L", 9000)
	var fragmented []byte
	fragmented = append(fragmented, frameWidth(wstest.OpText, 2, []byte(long))...)
	fragmented = append(fragmented, frameWidth(0x80|wstest.OpPing, 1, []byte("p"))...)
	fragmented = append(fragmented, frameWidth(0x80|wstest.OpContinuation, 1, []byte("!"))...)
	for _, tc := range []struct {
		name    string
		early   []byte // pipelined behind the handshake
		bytes   []byte // written one byte at a time after it
		cut     bool   // then close_notify
		pong    string // answered first, if any
		reply   string // the echo, if any
		status  int    // the close, if any
		logCode string
	}{
		{name: "pipelined", early: append(frameWidth(0x80|wstest.OpPing, 1, []byte("e")), frameWidth(0x80|wstest.OpText, 1, []byte("early"))...),
			reply: "Server received: early", pong: "e"},
		{name: "fragments byte by byte", bytes: fragmented, pong: "p", reply: "Server received: " + long + "!"},
		{name: "one over the limit", early: frameWidth(0x80|wstest.OpText, 2, []byte(strings.Repeat("o", 10001))),
			status: 1009, logCode: "too_large"},
		{name: "long frame cut", early: frameWidth(0x80|wstest.OpText, 2, []byte(long))[:5000], cut: true,
			logCode: "canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &wstest.Logs{}
			srv := wsguard.New(echo, wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)), wsguard.WithReadLimit(10000))
			hs := httptest.NewUnstartedServer(srv)
			hs.StartTLS()
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				hs.Close()
			})
			pool := x509.NewCertPool()
			pool.AddCert(hs.Certificate())
			nc, err := tls.Dial("tcp", hs.Listener.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "example.com"})
			if err != nil {
				t.Fatal(err)
			}
			raw := wstest.DialRawConn(t, nc, "wss://"+hs.Listener.Addr().String()+"/", nil, tc.early)
			if raw.Response.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake status %d", raw.Response.StatusCode)
			}
			for i := range tc.bytes {
				if err := raw.WriteBytes(tc.bytes[i : i+1]); err != nil {
					t.Fatal(err)
				}
			}
			if tc.cut {
				if err := raw.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.pong != "" {
				if f, err := raw.ReadFrame(3 * time.Second); err != nil || f.Opcode != wstest.OpPong || string(f.Payload) != tc.pong {
					t.Fatalf("frame %+v, %v: want pong %q", f, err, tc.pong)
				}
			}
			if tc.reply != "" {
				if f, err := raw.ReadFrame(3 * time.Second); err != nil || f.Opcode != wstest.OpText || string(f.Payload) != tc.reply {
					t.Fatalf("frame %.40q, %v: want the reply", f.Payload, err)
				}
				return
			}
			if tc.status != 0 {
				if status, _, err := raw.ReadClose(3 * time.Second); err != nil || status != tc.status {
					t.Fatalf("close %d, %v: want %d", status, err, tc.status)
				}
			}
			if line := closeLine(t, logs); line["code"] != tc.logCode {
				t.Fatalf("closing line %v", line)
			}
		})
	}
}

// Broadcasts, Enqueue and Send of long and short messages from several
// goroutines, while the client pings and the server keeps its keepalive:
// every frame the client receives parses, each message arrives whole and
// once, and the pongs come in the order of the pings.
func TestConcurrentWritersWhileTheClientPings(t *testing.T) {
	t.Parallel()
	const each, pings = 15, 150
	msg := func(tag byte, n int) []byte {
		b := bytes.Repeat([]byte{tag}, n)
		b[0], b[n-1] = '<', '>'
		return b
	}
	broadcast, queued, sent := msg('b', 100<<10), msg('q', 70<<10), msg('s', 3000)
	g := wsguard.NewGroup(nil)
	conns := make(chan *wsguard.Conn, 1)
	ts := groupServer(t, g, conns, wsguard.WithSendQueue(64<<20, 4096), wsguard.WithPingInterval(5*time.Millisecond))
	raw := dialRawOK(t, ts)
	c := <-conns
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for range each {
			_ = g.Broadcast(context.Background(), nil, wsguard.MessageText, broadcast)
		}
	})
	wg.Go(func() {
		for range each {
			_ = c.Enqueue(wsguard.MessageText, queued)
		}
	})
	wg.Go(func() {
		for range each {
			_ = c.Send(context.Background(), wsguard.MessageText, sent)
		}
	})
	wg.Go(func() {
		for i := range pings {
			if raw.WriteFrame(true, wstest.OpPing, fmt.Appendf(nil, "ping-%03d", i)) != nil {
				return
			}
		}
	})
	got := map[byte]int{}
	pong := 0
	for got['b']+got['q']+got['s'] < 3*each || pong < pings {
		f, err := raw.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("after %v messages and %d pongs: %v", got, pong, err)
		}
		switch f.Opcode {
		case wstest.OpPing:
			continue
		case wstest.OpPong:
			if want := fmt.Sprintf("ping-%03d", pong); string(f.Payload) != want {
				t.Fatalf("pong %q, want %q", f.Payload, want)
			}
			pong++
			continue
		case wstest.OpText:
		default:
			t.Fatalf("frame of opcode %#x", f.Opcode)
		}
		if !f.Fin || len(f.Payload) < 2 {
			t.Fatalf("text frame fin %v of %d bytes", f.Fin, len(f.Payload))
		}
		tag := f.Payload[1]
		if want := map[byte][]byte{'b': broadcast, 'q': queued, 's': sent}[tag]; !bytes.Equal(f.Payload, want) {
			t.Fatalf("message of %d bytes tagged %q is not whole", len(f.Payload), tag)
		}
		got[tag]++
	}
	if got['b'] != each || got['q'] != each || got['s'] != each {
		t.Fatalf("messages %v, want %d of each", got, each)
	}
}

// A binary message on a text endpoint is refused as its first frame
// arrives, whatever its length, empty included; the messages the client
// sent behind it are read by the close handshake, which completes.
func TestBinaryMessageOnATextEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"empty", frameWidth(0x80|wstest.OpBinary, 1, nil)},
		{"short", frameWidth(0x80|wstest.OpBinary, 1, []byte{0xff, 0})},
		{"fragmented", append(frameWidth(wstest.OpBinary, 1, nil), frameWidth(0x80|wstest.OpContinuation, 2, []byte("xy"))...)},
		{"long", frameWidth(0x80|wstest.OpBinary, 2, bytes.Repeat([]byte{1}, 9000))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &messageLog{}
			ts := start(t, h)
			raw := dialRawOK(t, ts)
			b := append(bytes.Clone(tc.frame), frameWidth(0x80|wstest.OpText, 1, []byte("z"))...)
			if err := raw.WriteBytes(b); err != nil {
				t.Fatal(err)
			}
			status, _, err := raw.ReadClose(3 * time.Second)
			if err != nil || status != 1003 {
				t.Fatalf("close %d, %v: want 1003", status, err)
			}
			echoed := time.Now()
			if line := closeLine(t, ts.Logs); line["code"] != "unsupported" {
				t.Fatalf("closing line %v", line)
			}
			if d := time.Since(echoed); d > 500*time.Millisecond {
				t.Fatalf("connection ended %v after the echoed close", d)
			}
			if h.seen() != "" {
				t.Fatalf("handler saw %q", h.seen())
			}
		})
	}
}

// A long message in frames of every size around the read buffer's, with
// pings between them, arrives whole: unmasked at the right offset in each
// frame, and grown with what arrives.
func TestLongMessageInOddFramesArrivesWhole(t *testing.T) {
	t.Parallel()
	msg := make([]byte, 600<<10)
	for i := range msg {
		msg[i] = 'a' + byte(i%26)
	}
	var stream []byte
	rest := msg
	for i, n := range []int{1, 4095, 4096, 4097, 3, 100_000, 8191, 8193} {
		op := byte(wstest.OpContinuation)
		if i == 0 {
			op = wstest.OpText
		}
		stream = append(stream, frameWidth(op, 8, rest[:n])...)
		stream = append(stream, frameWidth(0x80|wstest.OpPing, 1, []byte{byte(i)})...)
		rest = rest[n:]
	}
	stream = append(stream, frameWidth(0x80|wstest.OpContinuation, 8, rest)...)
	ts := start(t, echo, wsguard.WithReadLimit(1<<20))
	raw := dialRawOK(t, ts)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = raw.WriteBytes(stream) })
	for i := range 8 {
		if f, err := raw.ReadFrame(3 * time.Second); err != nil || f.Opcode != wstest.OpPong || !bytes.Equal(f.Payload, []byte{byte(i)}) {
			t.Fatalf("frame %+v, %v: want pong %d", f, err, i)
		}
	}
	f, err := raw.ReadFrame(3 * time.Second)
	if err != nil || f.Opcode != wstest.OpText {
		t.Fatalf("frame opcode %#x, %v", f.Opcode, err)
	}
	if got, ok := bytes.CutPrefix(f.Payload, []byte("Server received: ")); !ok || !bytes.Equal(got, msg) {
		t.Fatalf("reply of %d bytes is not the message of %d", len(f.Payload), len(msg))
	}
}

// A handler's Send to a client that does not read, which has sent part
// of its next frame: the write timeout cuts the connection, logged once
// as deadline exceeded, and nothing is left waiting on the half frame.
func TestWriteTimeoutWithAFrameHalfSent(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("w"), 8<<20)
	flood := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, wsguard.MessageText, big)
	})
	ts := start(t, flood, wsguard.WithWriteTimeout(200*time.Millisecond))
	raw := dialRawOK(t, ts)
	b := append(frameWidth(0x80|wstest.OpText, 1, []byte("go")), frameWidth(0x80|wstest.OpText, 2, make([]byte, 300))[:5]...)
	if err := raw.WriteBytes(b); err != nil {
		t.Fatal(err)
	}
	line := closeLine(t, ts.Logs)
	if line["code"] != "deadline_exceeded" || line["close"] != float64(1006) {
		t.Fatalf("closing line %v", line)
	}
	waitClosed(t, ts, 0)
}
