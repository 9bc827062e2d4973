package wsguard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// Group is a set of connections that receive the same messages: a chat
// room, a topic, a document's viewers. A broadcast encodes its message
// once and queues it to every member with [Conn.Enqueue], so that it never
// waits on a member: a member that does not read is cut when its send
// queue goes over its bound ([WithSendQueue]), and the sender and the
// other members go on. A connection leaves every group it joined when it
// ends, before the server's disconnect hooks run ([WithDisconnect]).
//
// A Group spans several processes when it is given a [Relay]
// ([NewGroup]); store/redisstore has one over Redis pub/sub. Members are
// always the connections of this process.
//
// A Group is safe for concurrent use: members may join and leave while a
// broadcast runs, and a broadcast reaches the members of the moment it
// started. The zero value is an empty group without a relay.
type Group struct {
	relay Relay

	mu      sync.RWMutex
	members []*Conn
	index   map[*Conn]int // position in members
}

// Relay carries a group's broadcasts to the same group in other
// processes, whose relay gives them to [Group.Deliver] there.
type Relay interface {
	// Publish sends a message broadcast in this process to the group's
	// other processes. What it does when they cannot be reached, and
	// how long it may wait (ctx bounds it), is the implementation's
	// documented choice; the local members have their copy already.
	Publish(ctx context.Context, typ MessageType, p []byte) error
}

// NewGroup returns an empty group. With a relay, every broadcast is also
// published to the group's other processes; nil means this process only,
// as the zero Group is.
func NewGroup(r Relay) *Group {
	return &Group{relay: r}
}

// memberships are the groups a connection has joined.
type memberships struct {
	mu     sync.Mutex
	groups []*Group
	ended  bool // the connection has left them all; it joins no more
}

// Join adds c to the group and reports whether it is a member: false when
// c has already ended. Joining twice does nothing. c leaves by itself when
// it ends.
func (g *Group) Join(c *Conn) bool {
	m := &c.groups
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.index[c]; ok {
		return true
	}
	if g.index == nil {
		g.index = make(map[*Conn]int)
	}
	g.index[c] = len(g.members)
	g.members = append(g.members, c)
	m.groups = append(m.groups, g)
	return true
}

// Leave removes c from the group; a connection that is not a member is
// left alone.
func (g *Group) Leave(c *Conn) {
	m := &c.groups
	m.mu.Lock()
	defer m.mu.Unlock()
	if g.remove(c) {
		m.groups = slices.DeleteFunc(m.groups, func(x *Group) bool { return x == g })
	}
}

func (g *Group) remove(c *Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	i, ok := g.index[c]
	if !ok {
		return false
	}
	last := len(g.members) - 1
	g.members[i] = g.members[last]
	g.index[g.members[i]] = i
	g.members[last] = nil
	g.members = g.members[:last]
	delete(g.index, c)
	if len(g.members) == 0 {
		// Give back the memory of a crowd that has gone.
		g.members, g.index = nil, nil
	}
	return true
}

// leaveGroups takes the ending connection out of every group it joined.
func (c *Conn) leaveGroups() {
	m := &c.groups
	m.mu.Lock()
	m.ended = true
	groups := m.groups
	m.groups = nil
	m.mu.Unlock()
	for _, g := range groups {
		g.remove(c)
	}
}

// Len returns the number of members in this process.
func (g *Group) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.members)
}

// Has reports whether c is a member.
func (g *Group) Has(c *Conn) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.index[c]
	return ok
}

// Broadcast queues p to every member but except (nil: to all), and
// publishes it through the group's relay, if any, to the group's other
// processes. It never waits on a member. p is shared by all of them and
// must not be modified afterwards.
//
// ctx bounds the relay's publish only; local members get their copy
// whatever it is. Broadcast returns the relay's error, if any, when the
// other processes may have missed the message; the members of this
// process have it either way.
func (g *Group) Broadcast(ctx context.Context, except *Conn, typ MessageType, p []byte) error {
	g.deliver(except, typ, p)
	if g.relay == nil {
		return nil
	}
	if err := g.relay.Publish(ctx, typ, p); err != nil {
		return fmt.Errorf("wsguard: broadcast: %w", err)
	}
	return nil
}

// BroadcastJSON broadcasts v encoded as JSON in a text message, encoded
// once for all members, as [Group.Broadcast] does.
func (g *Group) BroadcastJSON(ctx context.Context, except *Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wsguard: broadcast: %w", err)
	}
	return g.Broadcast(ctx, except, MessageText, b)
}

// Deliver queues p to every member of this process, without publishing
// it: a [Relay] calls it with a message broadcast in another process.
func (g *Group) Deliver(typ MessageType, p []byte) {
	g.deliver(nil, typ, p)
}

func (g *Group) deliver(except *Conn, typ MessageType, p []byte) {
	// Enqueue never blocks, so the members are walked under the read
	// lock: a join or leave waits for the walk, not for any client.
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, c := range g.members {
		if c != except {
			// A member that has ended or is cut for its queue is
			// leaving; its error is no concern of the sender's.
			_ = c.Enqueue(typ, p)
		}
	}
}
