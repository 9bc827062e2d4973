package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// Messages from the page. Each type has its own struct and rules; the
// validate.Router picks by "type" and rejects members a type lacks.
type (
	joinMsg struct {
		Room  string `json:"room" validate:"required,alphanum,max=32"`
		Email string `json:"email" validate:"required,email,max=254"`
	}
	sayMsg struct {
		Text string `json:"text" validate:"required,max=500"`
	}
)

// Messages to the page.
type (
	joinedMsg struct {
		Type    string `json:"type"` // "joined"
		Room    string `json:"room"`
		Members int    `json:"members"`
	}
	chatMsg struct {
		Type   string    `json:"type"` // "message"
		Room   string    `json:"room"`
		From   string    `json:"from"`
		Text   string    `json:"text"`
		Digest string    `json:"digest"` // of the say message as received
		At     time.Time `json:"at"`
	}
)

// member is a connection that joined a room.
type member struct {
	room, email string
}

// hub knows which connection is in which room.
type hub struct {
	mu      sync.Mutex
	members map[*wsguard.Conn]member
	rooms   map[string]map[*wsguard.Conn]struct{}
}

func newHub() *hub {
	return &hub{members: make(map[*wsguard.Conn]member), rooms: make(map[string]map[*wsguard.Conn]struct{})}
}

// enter moves c into room and returns the room's size.
func (h *hub) enter(c *wsguard.Conn, room, email string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, known := h.members[c]; known {
		h.removeLocked(c, old.room)
	}
	h.members[c] = member{room: room, email: email}
	if h.rooms[room] == nil {
		h.rooms[room] = make(map[*wsguard.Conn]struct{})
	}
	h.rooms[room][c] = struct{}{}
	return len(h.rooms[room])
}

func (h *hub) leave(c *wsguard.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.members[c]; ok {
		h.removeLocked(c, m.room)
		delete(h.members, c)
	}
}

func (h *hub) removeLocked(c *wsguard.Conn, room string) {
	delete(h.rooms[room], c)
	if len(h.rooms[room]) == 0 {
		delete(h.rooms, room)
	}
}

// lookup returns c's membership and the connections of its room.
func (h *hub) lookup(c *wsguard.Conn) (member, []*wsguard.Conn, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.members[c]
	if !ok {
		return m, nil, false
	}
	conns := make([]*wsguard.Conn, 0, len(h.rooms[m.room]))
	for o := range h.rooms[m.room] {
		conns = append(conns, o)
	}
	return m, conns, true
}

func (a *app) join(ctx context.Context, c *wsguard.Conn, m joinMsg) error {
	n := a.hub.enter(c, m.Room, m.Email)
	return c.SendJSON(ctx, joinedMsg{Type: "joined", Room: m.Room, Members: n})
}

// say broadcasts to the speaker's room, the speaker included, with the
// digest that names the message in the server's logs.
func (a *app) say(ctx context.Context, c *wsguard.Conn, m sayMsg) error {
	me, conns, ok := a.hub.lookup(c)
	if !ok {
		return errlog.NewError(errlog.InvalidArgument, notJoined{})
	}
	out, err := json.Marshal(chatMsg{
		Type: "message", Room: me.room, From: me.email, Text: m.Text,
		Digest: validate.Digest(ctx), At: time.Now().UTC().Truncate(time.Second),
	})
	if err != nil {
		return errlog.NewError(errlog.Internal, err)
	}
	for _, o := range conns {
		// A member that cannot take the message is closed by its own
		// write timeout; that is no reason to fail the speaker.
		_ = o.Send(ctx, wsguard.MessageText, out)
	}
	return nil
}

// notJoined is the reply to a say before any join.
type notJoined struct{}

func (notJoined) Error() string { return errNotJoined.Error() }

// Reply implements wsguard.Replier.
func (notJoined) Reply() wsguard.ErrorReply {
	return wsguard.ErrorReply{Code: "not_joined", Message: "join a room first"}
}
