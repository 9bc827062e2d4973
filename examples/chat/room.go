package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/store/redisstore"
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
		Members int    `json:"members"` // on this instance, the joiner included (see room)
		Name    string `json:"name"`    // the joiner, as the others see it
		Sub     string `json:"sub"`
	}
	// presenceMsg tells a room's other members on this instance that
	// someone came or left, and how many are here now (see room).
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

// room is a set of connections that hear each other: its messages go to
// all, its join and leave notices, with the count they carry, to local.
// Without Redis the two are one group of this instance's members. With
// it, all spans the instances that share the Redis and local holds the
// members on this instance: a count across instances would need the
// membership kept in Redis, with the members of a crashed instance
// expiring, which this example leaves out. So a count is of the members
// on the instance a page is connected to, and a notice reaches those.
type room struct {
	name       string
	all, local *wsguard.Group
}

// add makes c a member of r.
func (r *room) add(c *wsguard.Conn) {
	r.local.Join(c)
	r.all.Join(c)
}

// remove takes c out of r; a connection that has ended has left already.
func (r *room) remove(c *wsguard.Conn) {
	r.local.Leave(c)
	r.all.Leave(c)
}

// membership is the room a connection is in, and who it is there.
type membership struct {
	room *room
	who  person
}

// hub knows which connection is in which room. Rooms are made, joined,
// left and forgotten under its lock, so that the counts of the notices
// follow each other; the notices are queued, never written, under it.
type hub struct {
	groups *redisstore.Groups // nil: rooms of this instance only

	mu    sync.Mutex
	in    map[*wsguard.Conn]membership
	rooms map[string]*room
}

func newHub(groups *redisstore.Groups) *hub {
	return &hub{groups: groups, in: make(map[*wsguard.Conn]membership), rooms: make(map[string]*room)}
}

// open makes the room called name. With Redis, subscribing to it may
// wait the store's timeout: a Redis that does not answer delays joining a
// room new to this instance by that much, and the store logs it; the room
// serves this instance's members meanwhile.
func (h *hub) open(ctx context.Context, name string) *room {
	local := wsguard.NewGroup(nil)
	r := &room{name: name, all: local, local: local}
	if h.groups != nil {
		// No group once the groups are closed, as the server shuts
		// down: the room is then this instance's only.
		if g, _ := h.groups.Group(ctx, name); g != nil {
			r.all = g
		}
	}
	return r
}

// enter moves c into the room called name: the room c was in, if
// another, hears that c left; c is told it joined, and then the room's
// other members on this instance hear of it. c's reply is queued before c
// joins, so that it comes before anything said in the room.
func (h *hub) enter(ctx context.Context, c *wsguard.Conn, name string, who person) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.in[c]; ok && m.room.name != name {
		delete(h.in, c)
		h.leaveLocked(ctx, c, m)
	}
	r := h.rooms[name]
	if r == nil {
		r = h.open(ctx, name)
		h.rooms[name] = r
	}
	n := r.local.Len()
	if !r.local.Has(c) {
		n++
	}
	joined, _ := json.Marshal(joinedMsg{Type: "joined", Room: name, Members: n, Name: who.name, Sub: who.sub})
	if c.Enqueue(wsguard.MessageText, joined) != nil {
		// c has ended; an empty room it was to open is forgotten.
		if r.local.Len() == 0 {
			h.forgetLocked(ctx, r)
		}
		return
	}
	r.add(c)
	h.in[c] = membership{room: r, who: who}
	_ = r.local.Broadcast(ctx, c, wsguard.MessageText, presence("join", name, who, n))
}

// leave takes c out of its room, which hears that it left. It is c's
// disconnect hook: by then c has left the room's groups by itself.
func (h *hub) leave(c *wsguard.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.in[c]
	if !ok {
		return
	}
	delete(h.in, c)
	// The connection's context is over, but it still names its server's
	// logger, to which the store reports.
	h.leaveLocked(context.WithoutCancel(c.Context()), c, m)
}

// leaveLocked takes c out of m's room and tells the room's members on
// this instance; an empty room is forgotten. h.mu is held.
func (h *hub) leaveLocked(ctx context.Context, c *wsguard.Conn, m membership) {
	r := m.room
	r.remove(c)
	n := r.local.Len()
	if n == 0 {
		h.forgetLocked(ctx, r)
		return
	}
	_ = r.local.Broadcast(ctx, nil, wsguard.MessageText, presence("leave", r.name, m.who, n))
}

// forgetLocked forgets an empty room and, with Redis, stops receiving
// its messages. h.mu is held, so that a join cannot take the room's
// group while it is dropped. A member that ended left the room's groups
// before the hub heard of it: the room may have been forgotten already,
// and its name may be a new room's.
func (h *hub) forgetLocked(ctx context.Context, r *room) {
	if h.rooms[r.name] != r {
		return
	}
	delete(h.rooms, r.name)
	if h.groups == nil {
		return
	}
	if err := h.groups.Drop(ctx, r.name); err != nil {
		// The subscription goes with the client's next reconnection;
		// until then the room's messages are received and dropped.
		wsguard.LoggerFrom(ctx).LogAttrs(ctx, slog.LevelWarn, "redis store unreachable",
			slog.String("use", redisstore.UseGroups), slog.String("action", "room not unsubscribed"), errlog.ErrAttr(err))
	}
}

// roomOf returns the room c is in.
func (h *hub) roomOf(c *wsguard.Conn) (*room, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.in[c]
	return m.room, ok
}

func presence(event, room string, who person, members int) []byte {
	b, _ := json.Marshal(presenceMsg{Type: "presence", Event: event, Room: room, Name: who.name, Sub: who.sub, Members: members})
	return b
}

func (a *app) join(ctx context.Context, c *wsguard.Conn, m joinMsg) error {
	a.hub.enter(ctx, c, m.Room, personOf(ctx))
	return nil
}

// say broadcasts to the speaker's room, the speaker included, under the
// name of the speaker's token, with the digest that names the message in
// the server's logs. The broadcast waits on no member: one that does not
// read is cut when its send queue is full (4429). With Redis, members on
// other instances miss the message while Redis cannot be reached; the
// store logs it and the members here have it.
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
	_ = r.all.Broadcast(ctx, nil, wsguard.MessageText, out)
	return nil
}

// notJoined is the reply to a say before any join.
type notJoined struct{}

func (notJoined) Error() string { return errNotJoined.Error() }

// Reply implements wsguard.Replier.
func (notJoined) Reply() wsguard.ErrorReply {
	return wsguard.ErrorReply{Code: "not_joined", Message: "join a room first"}
}
