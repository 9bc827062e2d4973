package wsguard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// groupServer serves a room: every connection joins g, and every message
// is broadcast to the others. The server's connections are sent on conns
// as they open.
func groupServer(t *testing.T, g *wsguard.Group, conns chan<- *wsguard.Conn, opts ...wsguard.Option) *testServer {
	t.Helper()
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		// The message's buffer is reused once the handler returns.
		return g.Broadcast(ctx, c, m.Type, bytes.Clone(m.Data))
	})
	opts = append([]wsguard.Option{
		wsguard.WithMessageRate(1e6, 1e6),
		wsguard.WithConnect(func(_ context.Context, c *wsguard.Conn) error {
			g.Join(c)
			if conns != nil {
				conns <- c
			}
			return nil
		}),
	}, opts...)
	return start(t, h, opts...)
}

func waitLen(t *testing.T, g *wsguard.Group, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); g.Len() != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("group of %d members, want %d", g.Len(), n)
		}
	}
}

// TestSlowMemberDoesNotDelayOthers broadcasts to a room where one member
// never reads: the readers get every message at once, the sender is never
// held or closed, and the silent member is cut with 4429 once its queue
// passes the bound, long before the write timeout would.
func TestSlowMemberDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	g := wsguard.NewGroup(nil)
	rec := &recorder{}
	const queueBytes = 256 << 10
	// A broadcast held by the silent member would wait the write
	// timeout out: make that a minute, far over what the run may take on
	// a busy machine.
	ts := groupServer(t, g, nil, wsguard.WithSendQueue(queueBytes, 1<<20), wsguard.WithObserver(rec),
		wsguard.WithWriteTimeout(time.Minute))

	slow := wstest.DialRaw(t, ts.URL, nil)
	if tc, ok := slow.Conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(1024)
	}
	sender := dial(t, ts.URL, nil)
	const readers, msgs, size = 3, 2000, 4 << 10 // 8 MB per member: more than the sockets hold
	got := make([]atomic.Int64, readers)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	for i := range readers {
		c := dial(t, ts.URL, nil)
		c.SetReadLimit(size)
		wg.Go(func() {
			for got[i].Load() < msgs {
				if _, _, err := c.Read(ctx); err != nil {
					t.Errorf("reader %d after %d messages: %v", i, got[i].Load(), err)
					return
				}
				got[i].Add(1)
			}
		})
	}
	waitLen(t, g, readers+2)

	payload := bytes.Repeat([]byte("x"), size)
	start := time.Now()
	for i := range msgs {
		if err := sender.Write(ctx, websocket.MessageText, payload); err != nil {
			t.Fatalf("sender: %v", err)
		}
		// The readers keep up: none falls more than a quarter of the
		// queue's bound behind.
		for k := range got {
			for int64(i)-got[k].Load() > queueBytes/size/4 && ctx.Err() == nil {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	wg.Wait()
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the readers got %d messages in %v", msgs, took)
	}

	limited := rec.find(wsguard.EventLimited)
	if len(limited) != 1 || limited[0].Reason != wsguard.LimitSendQueue || limited[0].Code != errlog.ResourceExhausted {
		t.Fatalf("limited events %+v, want one send_queue", limited)
	}
	// The silent member leaves the room at once, before its close
	// handshake has given up on it.
	waitLen(t, g, readers+1)
	line := ts.Logs.WaitFor(t, "connection closed", 10*time.Second)
	if len(line) != 1 || line[0]["code"] != "resource_exhausted" || line[0]["close"] != float64(4429) ||
		line[0]["conn"] != limited[0].Conn.ID() || line[0]["payload"] != nil {
		t.Fatalf("closing lines %v, want the silent member's with 4429", line)
	}
	// The sender is still served.
	if err := sender.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.find(wsguard.EventConnClosed)); n != 1 {
		t.Errorf("%d connections closed, want only the silent one", n)
	}
	var depth int
	for _, e := range rec.find(wsguard.EventSendQueued) {
		depth = max(depth, e.Size)
	}
	if depth < 2 {
		t.Errorf("queue depths observed up to %d", depth)
	}
}

// TestEnqueueOrderAndBatching queues more messages than one write carries
// and checks that they arrive complete and in order.
func TestEnqueueOrderAndBatching(t *testing.T) {
	t.Parallel()
	conns := make(chan *wsguard.Conn, 1)
	ts := groupServer(t, wsguard.NewGroup(nil), conns)
	c := dial(t, ts.URL, nil)
	sc := <-conns
	const n = 1000 // about 110 KiB: more than one batch of up to 64 KiB
	for i := range n {
		if err := sc.Enqueue(wsguard.MessageText, fmt.Appendf(nil, "message %d %s", i, bytes.Repeat([]byte("."), i%200))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprintf("message %d ", i); !bytes.HasPrefix(b, []byte(want)) || len(b) != len(want)+i%200 {
			t.Fatalf("message %d is %.40q", i, b)
		}
	}
}

// TestEnqueueOnEndedConnection keeps Send's contract: an error wrapping
// ErrClosed, without an errlog code.
func TestEnqueueOnEndedConnection(t *testing.T) {
	t.Parallel()
	conns := make(chan *wsguard.Conn, 1)
	g := wsguard.NewGroup(nil)
	ts := groupServer(t, g, conns)
	c := dial(t, ts.URL, nil)
	sc := <-conns
	c.Close(websocket.StatusNormalClosure, "")
	closeLine(t, ts.Logs)
	err := sc.Enqueue(wsguard.MessageText, []byte("late"))
	if _, coded := errors.AsType[*errlog.Error](err); !errors.Is(err, wsguard.ErrClosed) || coded {
		t.Errorf("Enqueue after the end: %v", err)
	}
	if g.Len() != 0 || g.Has(sc) {
		t.Errorf("an ended connection is still a member")
	}
	if g.Join(sc) {
		t.Error("an ended connection joined")
	}
}

// TestGroupMembershipUnderConcurrency joins, leaves and broadcasts from
// many goroutines at once (run with -race), then checks that the group
// agrees with what was done and that a final broadcast reaches every
// member exactly once.
func TestGroupMembershipUnderConcurrency(t *testing.T) {
	t.Parallel()
	const members = 8
	conns := make(chan *wsguard.Conn, members)
	g := wsguard.NewGroup(nil)
	ts := groupServer(t, wsguard.NewGroup(nil), conns)
	clients := make([]*websocket.Conn, members)
	server := make([]*wsguard.Conn, members)
	for i := range members {
		clients[i] = dial(t, ts.URL, nil)
		server[i] = <-conns
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Every client reads until it sees "end", counting it.
	ends := make([]atomic.Int64, members)
	var readers sync.WaitGroup
	for i, c := range clients {
		readers.Go(func() {
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					return
				}
				if string(b) == "end" {
					ends[i].Add(1)
				}
			}
		})
	}
	var wg sync.WaitGroup
	for i, c := range server {
		wg.Go(func() {
			for k := range 200 {
				if k%2 == 0 {
					g.Join(c)
				} else {
					g.Leave(c)
				}
				if k%10 == i%10 {
					_ = g.Broadcast(ctx, c, wsguard.MessageText, []byte("noise"))
				}
			}
		})
	}
	wg.Wait()
	if g.Len() != 0 {
		t.Fatalf("%d members after every one left", g.Len())
	}
	for _, c := range server {
		g.Join(c)
		g.Join(c) // twice is once
	}
	if g.Len() != members {
		t.Fatalf("%d members, want %d", g.Len(), members)
	}
	if err := g.Broadcast(ctx, nil, wsguard.MessageText, []byte("end")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		done := 0
		for i := range ends {
			if ends[i].Load() == 1 {
				done++
			}
		}
		if done == members {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d members got the last broadcast", done, members)
		}
	}
	// Ending connections leave by themselves.
	for _, c := range clients {
		c.Close(websocket.StatusNormalClosure, "")
	}
	waitLen(t, g, 0)
	cancel()
	readers.Wait()
}
