package validate_test

import (
	"context"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

type joinMsg struct {
	Room string `json:"room" validate:"required,alphanum"`
}

// orderMsg declares "id" itself: the order's id is also the message's.
type orderMsg struct {
	Type string `json:"type"`
	ID   string `json:"id" validate:"required"`
}

type ack struct {
	Type string            `json:"type"`
	ID   wsguard.MessageID `json:"id,omitempty"`
}

func correlatingRouter(opts ...validate.RouterOption) *validate.Router {
	r := validate.NewRouter(newValidator(), opts...)
	validate.Handle(r, "join", func(ctx context.Context, c *wsguard.Conn, m joinMsg) error {
		return c.SendJSON(ctx, ack{"joined", validate.ID(ctx)})
	})
	validate.Handle(r, "order", func(ctx context.Context, c *wsguard.Conn, m orderMsg) error {
		return c.SendJSON(ctx, ack{"order " + m.ID, validate.ID(ctx)})
	})
	return r
}

func TestRepliesCarryTheMessageID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, send, want string
	}{
		{"handler echoes a string id", `{"type":"join","id":"r1","room":"lobby"}`, `{"type":"joined","id":"r1"}`},
		{"handler echoes a number id", `{"id":7,"type":"join","room":"lobby"}`, `{"type":"joined","id":7}`},
		{"no id", `{"type":"join","room":"lobby"}`, `{"type":"joined"}`},
		{"error reply echoes it", `{"type":"join","id":"r2","room":""}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"room","rule":"required"}],"id":"r2"}`},
		{"an id that is no id is refused", `{"type":"join","id":"<b>","room":"lobby"}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"id","rule":"invalid"}]}`},
		{"an object id is refused", `{"type":"join","id":{"a":1},"room":"lobby"}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"id","rule":"invalid"}]}`},
		{"a struct that declares id gets it", `{"type":"order","id":"o-9"}`, `{"type":"order o-9","id":"o-9"}`},
		{"unknown members are still refused", `{"type":"join","id":"r3","room":"lobby","x":1}`,
			`{"type":"error","code":"invalid_argument","message":"unknown field","offset":40,"id":"r3"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, serve(t, correlatingRouter(), new(wstest.Logs)))
			send(t, c, tt.send)
			if got := read(t, c); got != tt.want {
				t.Fatalf("reply %s\nwant  %s", got, tt.want)
			}
		})
	}
}

func TestJSONAcceptsAnID(t *testing.T) {
	t.Parallel()
	h := validate.JSON(newValidator(), func(ctx context.Context, c *wsguard.Conn, m joinMsg) error {
		return c.SendJSON(ctx, ack{m.Room, validate.ID(ctx)})
	})
	c := dial(t, serve(t, h, new(wstest.Logs)))
	send(t, c, `{"room":"lobby","id":"q1"}`)
	if got, want := read(t, c), `{"type":"lobby","id":"q1"}`; got != want {
		t.Fatalf("reply %s, want %s", got, want)
	}
}

func TestUnknownType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  []validate.RouterOption
		reply string // "" when the connection closes
		close websocket.StatusCode
	}{
		{"closes with 1003 by default", nil, "", websocket.StatusUnsupportedData},
		{"an error reply when asked", []validate.RouterOption{validate.WithUnknownTypeReply()},
			`{"type":"error","code":"unknown_type","message":"unknown message type","id":"n1"}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, serve(t, correlatingRouter(tt.opts...), new(wstest.Logs)))
			send(t, c, `{"type":"newer","id":"n1"}`)
			if tt.reply == "" {
				if got := closeStatus(t, c); got != tt.close {
					t.Fatalf("close %v, want %v", got, tt.close)
				}
				return
			}
			if got := read(t, c); got != tt.reply {
				t.Fatalf("reply %s, want %s", got, tt.reply)
			}
			send(t, c, `{"type":"join","room":"lobby"}`)
			if got := read(t, c); got != `{"type":"joined"}` {
				t.Fatalf("the connection did not go on: %s", got)
			}
		})
	}
}
