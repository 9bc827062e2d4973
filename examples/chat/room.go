package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// Messages from the page. Each type has its own struct and rules; the
// validate.Router picks by "type" and rejects members a type lacks. Who
// speaks is never part of a message: it is the token's.
type (
	joinMsg struct {
		Room string `json:"room" validate:"required,alphanum,max=32"`
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
		Name    string `json:"name"` // the joiner, as the others see it
		Sub     string `json:"sub"`
	}
	// presenceMsg tells a room's other members that someone came or left,
	// and how many are there now.
	presenceMsg struct {
		Type    string `json:"type"`  // "presence"
		Event   string `json:"event"` // "join" or "leave"
		Room    string `json:"room"`
		Name    string `json:"name"`
		Sub     string `json:"sub"`
		Members int    `json:"members"`
	}
	chatMsg struct {
		Type   string    `json:"type"` // "message"
		Room   string    `json:"room"`
		From   string    `json:"from"` // the display name of the speaker's token
		Sub    string    `json:"sub"`  // the speaker's subject
		Text   string    `json:"text"`
		Digest string    `json:"digest"` // of the say message as received
		At     time.Time `json:"at"`
	}
)

// person is who a connection is, from its token.
type person struct {
	sub, name string
}

// personOf returns the identity of the connection of ctx: its subject and
// the display name its token carries.
func personOf(ctx context.Context) person {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return person{}
	}
	return person{sub: p.Subject, name: displayName(p)}
}

// room is a set of connections that hear each other.
type room struct {
	name    string
	mu      sync.Mutex
	members map[*wsguard.Conn]person
}

// broadcast sends msg to every member of r but except (nil: to all).
// Each send is bounded by its recipient's own context and write timeout,
// never by the sender's: a recipient that cannot take the message is
// closed by its own write timeout, which is no reason to fail the
// sender.
func (r *room) broadcast(msg []byte, except *wsguard.Conn) {
	r.mu.Lock()
	conns := make([]*wsguard.Conn, 0, len(r.members))
	for c := range r.members {
		if c != except {
			conns = append(conns, c)
		}
	}
	r.mu.Unlock()
	for _, c := range conns {
		_ = c.Send(c.Context(), wsguard.MessageText, msg)
	}
}

// hub knows which connection is in which room.
type hub struct {
	mu    sync.Mutex
	in    map[*wsguard.Conn]*room
	rooms map[string]*room
}

func newHub() *hub {
	return &hub{in: make(map[*wsguard.Conn]*room), rooms: make(map[string]*room)}
}

// enter moves c into the room called name and returns it with its size.
// The room c was in, if another, hears that c left.
func (h *hub) enter(c *wsguard.Conn, name string, who person) (*room, int) {
	h.mu.Lock()
	old := h.in[c]
	left := -1
	if old != nil && old.name != name {
		left = h.removeLocked(c, old)
	}
	r := h.rooms[name]
	if r == nil {
		r = &room{name: name, members: make(map[*wsguard.Conn]person)}
		h.rooms[name] = r
	}
	h.in[c] = r
	r.mu.Lock()
	r.members[c] = who
	n := len(r.members)
	r.mu.Unlock()
	h.mu.Unlock()
	if left >= 0 {
		old.broadcast(presence("leave", old.name, who, left), nil)
	}
	return r, n
}

// leave takes c out of its room, which hears that it left.
func (h *hub) leave(c *wsguard.Conn) {
	h.mu.Lock()
	r := h.in[c]
	if r == nil {
		h.mu.Unlock()
		return
	}
	r.mu.Lock()
	who := r.members[c]
	r.mu.Unlock()
	n := h.removeLocked(c, r)
	delete(h.in, c)
	h.mu.Unlock()
	r.broadcast(presence("leave", r.name, who, n), nil)
}

// removeLocked takes c out of r and returns r's size; an empty room is
// forgotten. h.mu is held.
func (h *hub) removeLocked(c *wsguard.Conn, r *room) int {
	r.mu.Lock()
	delete(r.members, c)
	n := len(r.members)
	r.mu.Unlock()
	if n == 0 {
		delete(h.rooms, r.name)
	}
	return n
}

// roomOf returns the room c is in.
func (h *hub) roomOf(c *wsguard.Conn) (*room, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.in[c]
	return r, ok
}

func presence(event, room string, who person, members int) []byte {
	b, _ := json.Marshal(presenceMsg{Type: "presence", Event: event, Room: room, Name: who.name, Sub: who.sub, Members: members})
	return b
}

func (a *app) join(ctx context.Context, c *wsguard.Conn, m joinMsg) error {
	who := personOf(ctx)
	r, n := a.hub.enter(c, m.Room, who)
	if err := c.SendJSON(ctx, joinedMsg{Type: "joined", Room: m.Room, Members: n, Name: who.name, Sub: who.sub}); err != nil {
		return err
	}
	r.broadcast(presence("join", r.name, who, n), c)
	return nil
}

// say broadcasts to the speaker's room, the speaker included, under the
// name of the speaker's token, with the digest that names the message in
// the server's logs.
func (a *app) say(ctx context.Context, c *wsguard.Conn, m sayMsg) error {
	r, ok := a.hub.roomOf(c)
	if !ok {
		return errlog.NewError(errlog.InvalidArgument, notJoined{})
	}
	who := personOf(ctx)
	out, err := json.Marshal(chatMsg{
		Type: "message", Room: r.name, From: who.name, Sub: who.sub, Text: m.Text,
		Digest: validate.Digest(ctx), At: time.Now().UTC().Truncate(time.Second),
	})
	if err != nil {
		return errlog.NewError(errlog.Internal, err)
	}
	r.broadcast(out, nil)
	return nil
}

// notJoined is the reply to a say before any join.
type notJoined struct{}

func (notJoined) Error() string { return errNotJoined.Error() }

// Reply implements wsguard.Replier.
func (notJoined) Reply() wsguard.ErrorReply {
	return wsguard.ErrorReply{Code: "not_joined", Message: "join a room first"}
}
