package wsguard_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

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
					if got := h.seen(); len(got) != tc.limit+2 || !strings.HasSuffix(got, "|z") {
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
