package wsguard_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// A message whose read fails is never named in the log by the digest of
// what the connection's message last held: that buffer has gone back to
// the pool, possibly to another connection's message.
func TestFailedReadNamesNoOtherMessage(t *testing.T) {
	t.Parallel()
	ts := start(t, &messageLog{})
	a := dialRawOK(t, ts)
	prev := "A's earlier message, 32 bytes.."
	if err := a.WriteFrame(true, wstest.OpText, []byte(prev)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	b := dialRawOK(t, ts)
	secret := "B-SECRET-PASSWORD-hunter2-xxxxx"
	if err := b.WriteFrame(false, wstest.OpText, []byte(secret)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	_ = a.WriteFrame(false, wstest.OpText, []byte("z"))
	_ = a.WriteBytes(wstest.EncodeFrame(0x80|0x40, true, 1, []byte("x"))) // RSV1 mid-message
	if _, _, err := a.ReadClose(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	line := closeLine(t, ts.Logs)
	if d, ok := line["payload_sha256"]; ok {
		for name, s := range map[string]string{"B's message": secret, "A's previous message": prev, "a splice": "z" + prev[1:]} {
			if sum := sha256.Sum256([]byte(s)); d == hex.EncodeToString(sum[:]) {
				t.Fatalf("A's closing line names the digest of %s: %v", name, line)
			}
		}
		t.Fatalf("the closing line names a message that never arrived whole: %v", line)
	}
}

// A handler's panic after its connection has ended for another reason
// (here the drain) has a line of its own: the closing line names the
// first reason only.
func TestHandlerFailureAfterTheEndIsLogged(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		close(entered)
		<-ctx.Done()
		panic("nil map write in the order book")
	}))
	raw := dialRawOK(t, ts)
	if err := raw.WriteFrame(true, wstest.OpText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	<-entered
	go func() { _, _, _ = raw.ReadClose(5 * time.Second) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lines := ts.Logs.WaitFor(t, "handler failed after the connection ended", 5*time.Second)
	if len(lines) != 1 || lines[0]["code"] != "internal" || !strings.Contains(fmt.Sprint(lines[0]["err"]), "order book") {
		t.Fatalf("lines %v\n%s", lines, ts.Logs)
	}
	if line := closeLine(t, ts.Logs); line["code"] != "canceled" {
		t.Fatalf("closing line %v, want the drain", line)
	}
}

// A context error a handler returns is its own failure, not the server's
// timer or shutdown: 1011 at error level, never 4408 or 1001.
func TestHandlerContextErrorsAreInternal(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(context.Context) error{
		"deadline": func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			defer cancel()
			<-ctx.Done()
			return fmt.Errorf("query orders: %w", ctx.Err())
		},
		"canceled": func(ctx context.Context) error {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return fmt.Errorf("query orders: %w", ctx.Err())
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error { return mk(ctx) }))
			c := dial(t, ts.URL, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.Read(ctx)
			if line := closeLine(t, ts.Logs); websocket.CloseStatus(err) != websocket.StatusInternalError || line["level"] != "ERROR" {
				t.Fatalf("close %d, line %v; want 1011 at ERROR", websocket.CloseStatus(err), line)
			}
		})
	}
}

// Messages, pings and pongs are charged to the bucket in the order they
// arrive: pings sent after two messages cannot take the budget those
// messages arrived within.
func TestRateIsChargedInArrivalOrder(t *testing.T) {
	t.Parallel()
	h := &messageLog{}
	ts := start(t, h, wsguard.WithMessageRate(0.001, 10))
	raw := dialRawOK(t, ts)
	b := append(wstest.EncodeFrame(0x81, true, 2, []byte("m1")), wstest.EncodeFrame(0x81, true, 2, []byte("m2"))...)
	for range 9 {
		b = append(b, wstest.EncodeFrame(0x89, true, 1, []byte("p"))...)
	}
	if err := raw.WriteBytes(b); err != nil {
		t.Fatal(err)
	}
	status, _, err := raw.ReadClose(5 * time.Second)
	if err != nil || status != 4429 {
		t.Fatalf("close %d, %v; want 4429", status, err)
	}
	waitClosed(t, ts, 0)
	if got := h.seen(); got != "m1|m2" {
		t.Fatalf("handler saw %q, want m1|m2", got)
	}
}

// Nothing reads the peer's pongs while a handler runs: a handler slower
// than the idle timeout does not make a peer that answers every ping idle.
func TestSlowHandlerDoesNotMakeThePeerIdle(t *testing.T) {
	t.Parallel()
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		time.Sleep(800 * time.Millisecond)
		return c.SendText(ctx, "done")
	}), wsguard.WithPingInterval(50*time.Millisecond), wsguard.WithIdleTimeout(300*time.Millisecond))
	raw := dialRawOK(t, ts)
	if err := raw.WriteFrame(true, wstest.OpText, []byte("work")); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := raw.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch f.Opcode {
		case wstest.OpPing:
			_ = raw.WriteFrame(true, wstest.OpPong, f.Payload)
		case wstest.OpText:
			return
		case wstest.OpClose:
			t.Fatalf("closed %q though every ping was answered", f.Payload[2:])
		}
	}
}

// A handler waiting on its context learns at once that the connection
// ended, and Shutdown does not wait past its deadline for one that does
// not.
func TestHandlerContextEndsWithTheConnection(t *testing.T) {
	t.Parallel()
	woken := make(chan error, 1)
	entered, release := make(chan struct{}), make(chan struct{})
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		close(entered)
		select {
		case <-ctx.Done():
			woken <- context.Cause(ctx)
		case <-release:
		}
		<-release // and then ignore it until the test lets go
		return nil
	}))
	defer close(release)
	raw := dialRawOK(t, ts)
	if err := raw.WriteFrame(true, wstest.OpText, []byte("wait")); err != nil {
		t.Fatal(err)
	}
	<-entered
	go func() { _, _, _ = raw.ReadClose(5 * time.Second) }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.Srv.Shutdown(ctx) }()
	select {
	case cause := <-woken:
		if cause == nil {
			t.Fatal("no cause")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the handler's context was not canceled when the drain closed its connection")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Shutdown returned nil with a handler still running")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown with a 300ms context had not returned after 3s")
	}
}

// A ping interval that is not shorter than the idle timeout would close
// every quiet connection, answering or not.
func TestPingIntervalMustBeShorterThanIdleTimeout(t *testing.T) {
	t.Parallel()
	err := wsguard.CheckOptions(wsguard.WithPingInterval(time.Second), wsguard.WithIdleTimeout(500*time.Millisecond))
	want := "wsguard: WithPingInterval(1s) with WithIdleTimeout(500ms): the ping interval must be shorter than the idle timeout"
	if fmt.Sprint(err) != want {
		t.Fatalf("CheckOptions = %v, want %s", err, want)
	}
	if err := wsguard.CheckOptions(wsguard.WithPingInterval(time.Second), wsguard.WithIdleTimeout(0)); err != nil {
		t.Fatalf("pings without an idle timeout: %v", err)
	}
}

// A Send whose context has already ended writes nothing and leaves the
// recipient as it is: the sender's context is not the recipient's end.
func TestSendWithAnEndedContextLeavesTheRecipient(t *testing.T) {
	t.Parallel()
	var first atomic.Pointer[wsguard.Conn]
	sendErr := make(chan error, 1)
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		if first.CompareAndSwap(nil, c) {
			return c.SendText(ctx, "ok")
		}
		if c == first.Load() {
			return echo(ctx, c, m)
		}
		done, cancel := context.WithCancel(ctx)
		cancel()
		sendErr <- first.Load().SendText(done, "relayed")
		return c.SendText(ctx, "tried")
	}))
	a := dial(t, ts.URL, nil)
	if got := roundTrip(t, a, "first"); got != "ok" {
		t.Fatalf("reply %q", got)
	}
	b := dial(t, ts.URL, nil)
	if got := roundTrip(t, b, "relay"); got != "tried" {
		t.Fatalf("reply %q", got)
	}
	if err := <-sendErr; !errors.Is(err, context.Canceled) || errors.Is(err, wsguard.ErrClosed) {
		t.Fatalf("Send = %v, want the context's error", err)
	}
	if got := roundTrip(t, a, "still here"); got != "Server received: still here" {
		t.Fatalf("the recipient: %q", got)
	}
	if n := ts.Srv.Open(); n != 2 {
		t.Fatalf("%d connections open, want both", n)
	}
}

// A client still sending when it is cut for abuse can finish its writes
// and read the close frame. A socket closed with unread bytes is reset:
// the client's next write fails (a client library then drops the
// connection as 1006), and on some systems the reset destroys the close
// frame in flight.
func TestFloodingClientGetsItsCloseFrame(t *testing.T) {
	t.Parallel()
	ts := start(t, echo, wsguard.WithMessageRate(1, 2))
	raw := dialRawOK(t, ts)
	for i := range 20 {
		if err := raw.WriteFrame(true, wstest.OpText, []byte("0123456789abcdef")); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	status, reason, err := raw.ReadClose(5 * time.Second)
	if err != nil || status != 4429 {
		t.Fatalf("close %d %q, %v; want 4429", status, reason, err)
	}
}
