package wsguard_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/wsguard"
)

func TestConnValues(t *testing.T) {
	t.Parallel()
	room := wsguard.NewConnValue[string]()
	count := wsguard.NewConnValue[int]()
	other := wsguard.NewConnValue[string]()
	type seen struct {
		room    string
		hasRoom bool
	}
	atEnd := make(chan seen, 1)
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		n, _ := count.Get(c)
		count.Set(c, n+1)
		switch string(m.Data) {
		case "join":
			room.Set(c, "lobby")
		case "leave":
			room.Delete(c)
		}
		r, ok := room.Get(c)
		if !ok {
			r = "-"
		}
		_, found := other.Get(c)
		if found {
			r = "leak"
		}
		return c.SendText(ctx, r)
	})
	var ended *wsguard.Conn
	ts := start(t, h, wsguard.WithDisconnect(func(c *wsguard.Conn) {
		r, ok := room.Get(c)
		ended = c
		atEnd <- seen{room: r, hasRoom: ok}
	}))
	c := dial(t, ts.URL, nil)
	for i, tt := range []struct{ send, want string }{
		{"hello", "-"}, {"join", "lobby"}, {"again", "lobby"}, {"leave", "-"}, {"join", "lobby"},
	} {
		if got := roundTrip(t, c, tt.send); got != tt.want {
			t.Fatalf("message %d (%s): got %q, want %q", i, tt.send, got, tt.want)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	var s seen
	select {
	case s = <-atEnd:
	case <-time.After(5 * time.Second):
		t.Fatal("the disconnect hook did not run")
	}
	if s.room != "lobby" || !s.hasRoom {
		t.Fatalf("the disconnect hook saw room %q (%v), want lobby", s.room, s.hasRoom)
	}
	closeLine(t, ts.Logs)
	if _, ok := room.Get(ended); ok {
		t.Fatal("a value outlived its connection")
	}
	room.Set(ended, "late")
	if _, ok := room.Get(ended); ok {
		t.Fatal("Set on an ended connection kept its value")
	}
}
