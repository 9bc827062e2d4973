package wsguard

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// parseFrames splits a server's byte stream into frames (unmasked), or
// fails the test when the stream is not a sequence of whole frames.
func parseFrames(t *testing.T, b []byte) (ops []byte, payloads [][]byte) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 2 || b[1]&0x80 != 0 {
			t.Fatalf("not a server frame header: % x", b[:min(len(b), 10)])
		}
		n, h := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, h = binary.BigEndian.Uint64(b[2:]), 10
		}
		if uint64(len(b)-h) < n {
			t.Fatalf("frame of %d bytes cut at %d", n, len(b)-h)
		}
		ops = append(ops, b[0]&0x0f)
		payloads = append(payloads, b[h:h+int(n)])
		b = b[h+int(n):]
	}
	return ops, payloads
}

// lockedConn records the bytes written to it, from any goroutine.
type lockedConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *lockedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

// TestWriterKeepsFramesWhole writes long data frames, pongs and the
// transport's close frame from several goroutines at once: the socket
// gets whole frames, each message intact, and nothing after the close.
func TestWriterKeepsFramesWhole(t *testing.T) {
	t.Parallel()
	nc := &lockedConn{}
	w := &batchWriter{nc: nc}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			p := bytes.Repeat([]byte{'a' + byte(i)}, 70_000+i*1000)
			for range 20 {
				if err := w.frame(opBinary, p, false); err != nil {
					t.Errorf("frame: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			if err := w.control(opPong, []byte("pp")); err != nil {
				t.Errorf("control: %v", err)
			}
		}
	})
	wg.Go(func() { // a batch, as the send queue writes one
		w.gather()
		for range 10 {
			_ = w.frame(opText, []byte("queued"), false)
		}
		w.release()
		_ = w.frame(opText, []byte("queued"), false)
	})
	wg.Wait()
	closeFrame := []byte{0x88, 2, 0x03, 0xe8}
	if n, err := w.Write(closeFrame); n != len(closeFrame) || err != nil {
		t.Fatalf("the transport's close frame: %d, %v", n, err)
	}
	if err := w.frame(opText, []byte("late"), false); !errors.Is(err, net.ErrClosed) {
		t.Errorf("a frame after the close frame: %v, want net.ErrClosed", err)
	}
	if err := w.control(opPong, []byte("late")); err != nil {
		t.Errorf("a pong after the close frame: %v, want nothing written and no error", err)
	}
	ops, payloads := parseFrames(t, nc.out.Bytes())
	count := map[byte]int{}
	for i, p := range payloads {
		count[ops[i]]++
		if ops[i] == opBinary && !bytes.Equal(p, bytes.Repeat(p[:1], len(p))) {
			t.Fatalf("frame %d mixes bytes of other frames", i)
		}
	}
	if count[opBinary] != 80 || count[opPong] != 200 || count[opText] != 11 || count[opClose] != 1 || ops[len(ops)-1] != opClose {
		t.Errorf("frames by opcode %v, last %#x; want 80 binary, 200 pongs, 11 text, then the close", count, ops[len(ops)-1])
	}
}

// TestNoBuffersBetweenMessages checks that the frame reader gives its
// buffer back once a message is read, and the writer its own once a
// message is written: a connection waiting for its client holds neither.
// (While it waits, a read that would block gives back the buffer it took
// before parking; the idle memory benchmark measures that part.) The
// handler looks, on the serving goroutine, between two reads.
func TestNoBuffersBetweenMessages(t *testing.T) {
	t.Parallel()
	srv := New(HandlerFunc(func(ctx context.Context, c *Conn, m *Message) error {
		c.nc.mu.Lock()
		read := c.nc.buf != nil || len(c.nc.data) > 0
		c.nc.mu.Unlock()
		c.out.mu.Lock()
		written := c.out.buf != nil
		c.out.mu.Unlock()
		return c.SendText(ctx, fmt.Sprintf("%d bytes; read buffer held: %v, write buffer held: %v", len(m.Data), read, written))
	}))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer func() { _ = srv.Shutdown(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	replies := make(chan string, 1)
	go func() { // reads the replies, and the pongs to the client's pings
		defer close(replies)
		for {
			_, p, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			replies <- string(p)
		}
	}()
	for _, size := range []int{3 * readBufSize, 10, readBufSize - 20} {
		if err := ws.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		if err := ws.Write(ctx, websocket.MessageText, bytes.Repeat([]byte("x"), size)); err != nil {
			t.Fatal(err)
		}
		if got, want := <-replies, fmt.Sprintf("%d bytes; read buffer held: false, write buffer held: false", size); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestTimedWriteArmsOnlyWhenItWaits: a Send's write arms the write timer
// (batchWriter.blocked) only when the socket cannot take the frame at
// once, and what it then writes arrives whole.
func TestTimedWriteArmsOnlyWhenItWaits(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.(*net.TCPConn).SetWriteBuffer(4096)
	raw, _ := nc.(*net.TCPConn).SyscallConn()
	w := &batchWriter{nc: nc, raw: raw}
	w.tryWrite = w.writeSocket
	var received bytes.Buffer
	reading := make(chan struct{})
	blocked := 0
	w.blocked = func() {
		blocked++
		if blocked == 1 {
			go func() { // the client starts reading only now
				defer close(reading)
				_, _ = received.ReadFrom(client)
			}()
		}
	}
	if err := w.frame(opText, []byte("hi"), true); err != nil || blocked != 0 {
		t.Fatalf("a short frame: %v, timer armed %d times; want written at once", err, blocked)
	}
	frame := bytes.Repeat([]byte("x"), 3000)
	sent := 1
	for blocked == 0 {
		if sent > 10_000 {
			t.Fatal("the socket never filled")
		}
		if err := w.frame(opBinary, frame, true); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if blocked != 1 {
		t.Errorf("timer armed %d times for the one write that waited", blocked)
	}
	_ = nc.Close()
	<-reading
	ops, payloads := parseFrames(t, received.Bytes())
	if len(ops) != sent || string(payloads[0]) != "hi" {
		t.Fatalf("%d frames arrived, %d sent", len(ops), sent)
	}
	for _, p := range payloads[1:] {
		if !bytes.Equal(p, frame) {
			t.Fatal("a frame arrived cut or mixed")
		}
	}
}

// TestReadAfterTheTransportTookOver: a close handshake may take the
// stream between next and read (the serving goroutine holds no lock
// there); it drops the rest of the frame, so read must not then report
// a message, empty or cut, as complete.
func TestReadAfterTheTransportTookOver(t *testing.T) {
	t.Parallel()
	closeFrame := maskedFrame(0x80|opClose, 3, 232)
	for _, payload := range []string{"", "cut short"} {
		t.Run(fmt.Sprintf("%q", payload), func(t *testing.T) {
			t.Parallel()
			stream := cat(maskedFrame(0x80|opText, []byte(payload)...), closeFrame)
			f := newFrameConn(&chunkConn{chunks: [][]byte{stream}}, rate.NewLimiter(rate.Inf, 0), 10)
			typ, err := f.next()
			if err != nil || typ != MessageText {
				t.Fatalf("next: %v, %v", typ, err)
			}
			p := make([]byte, 64)
			n, err := f.Read(p)
			if err != nil || !bytes.Equal(p[:n], closeFrame) {
				t.Fatalf("transport read % x, %v: want the close frame", p[:n], err)
			}
			if b, err := f.read(nil, 100); err != errTaken {
				t.Fatalf("read after the transport took over: %q, %v; want errTaken", b, err)
			}
		})
	}
}
