package redisstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/redistest"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/store/redisstore"
	"github.com/wsguard/kit/wsguard"
)

// room is one instance serving a room that spans instances: each message
// is broadcast to the room's other members.
type room struct {
	url    string
	logs   *wstest.Logs
	events *recorder
	group  *wsguard.Group
	groups *redisstore.Groups
}

func rooms(t *testing.T, srv *redistest.Server, n int) []*room {
	t.Helper()
	out := make([]*room, n)
	for i := range out {
		c := srv.Client()
		t.Cleanup(func() { c.Close() })
		gs := redisstore.New(c).Groups()
		t.Cleanup(func() { _ = gs.Close() })
		g, err := gs.Group(context.Background(), "lobby")
		if err != nil {
			t.Fatal(err)
		}
		r := &room{logs: &wstest.Logs{}, events: &recorder{}, group: g, groups: gs}
		ws := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
			_ = g.Broadcast(ctx, c, m.Type, bytes.Clone(m.Data))
			return nil
		}), wsguard.WithLogger(errlog.NewLogger(r.logs, slog.LevelDebug)), wsguard.WithObserver(r.events),
			wsguard.WithConnect(func(_ context.Context, c *wsguard.Conn) error {
				g.Join(c)
				return nil
			}))
		ts := httptest.NewServer(ws)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ws.Shutdown(ctx)
			ts.Close()
		})
		r.url = "ws" + strings.TrimPrefix(ts.URL, "http")
		out[i] = r
	}
	return out
}

// member joins r and waits until r counts members members.
func member(t *testing.T, r *room, members int) *websocket.Conn {
	t.Helper()
	c, _ := dialStatus(t, r.url)
	for deadline := time.Now().Add(5 * time.Second); r.group.Len() != members; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d members, want %d", r.group.Len(), members)
		}
	}
	return c
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// expect reads the next message of c, or fails when it is not want.
func expect(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil || string(b) != want {
		t.Fatalf("read %q, %v; want %q", b, err, want)
	}
}

// TestGroupSpansInstances runs one room on two instances sharing a Redis:
// a message reaches the members on both, once each, and not its sender.
// With Redis stopped, members on the sender's instance still get every
// message, the other instance's miss it, and the failure is logged and
// reported.
func TestGroupSpansInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rs := rooms(t, srv, 2)
	a1 := member(t, rs[0], 1)
	a2 := member(t, rs[0], 2)
	b1 := member(t, rs[1], 1)
	b2 := member(t, rs[1], 2)

	send(t, a1, "from a")
	expect(t, a2, "from a")
	expect(t, b1, "from a")
	expect(t, b2, "from a")
	send(t, b1, "from b")
	expect(t, a1, "from b")
	expect(t, a2, "from b")
	expect(t, b2, "from b")
	send(t, a2, "again")
	expect(t, a1, "again") // not "from a" a second time, nor its own
	expect(t, b1, "again")
	expect(t, b2, "again")

	srv.Stop()
	send(t, a1, "redis down")
	expect(t, a2, "redis down")
	lines := rs[0].logs.WaitFor(t, "redis store unreachable", 5*time.Second)
	if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["use"] != redisstore.UseGroups ||
		!strings.Contains(lines[0]["action"].(string), "this instance's members only") {
		t.Fatalf("lines %v", lines)
	}
	if n := rs[0].events.count(wsguard.EventStoreError, redisstore.UseGroups); n != 1 {
		t.Errorf("%d store error events, want 1", n)
	}
	// Local delivery keeps working on both; b1's next message is b2's,
	// not the one it could not get.
	time.Sleep(100 * time.Millisecond)
	send(t, b2, "b alone")
	expect(t, b1, "b alone")
	send(t, a2, "a alone")
	expect(t, a1, "a alone")
	for i, r := range rs {
		if n := r.events.count(wsguard.EventConnClosed, ""); n != 0 {
			t.Errorf("instance %d: %d connections closed", i, n)
		}
	}
}

// TestGroupDrop checks that a dropped group no longer receives other
// instances' broadcasts, and that the name then makes a new group.
func TestGroupDrop(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rs := rooms(t, srv, 2)
	a1 := member(t, rs[0], 1)
	b1 := member(t, rs[1], 1)
	b2 := member(t, rs[1], 2)
	send(t, a1, "before")
	expect(t, b1, "before")
	expect(t, b2, "before")

	ctx := context.Background()
	if err := rs[1].groups.Drop(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	send(t, a1, "after")
	// b1's next message is b2's: "after" never came.
	time.Sleep(100 * time.Millisecond)
	send(t, b2, "local")
	expect(t, b1, "local")
	g, err := rs[1].groups.Group(ctx, "lobby")
	if err != nil {
		t.Fatal(err)
	}
	if g == rs[1].group || g.Len() != 0 {
		t.Errorf("the dropped group came back (%d members)", g.Len())
	}
}
