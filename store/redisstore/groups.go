package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/wsguard"
)

// UseGroups names cross-instance broadcast in logs and
// wsguard.EventStoreError.
const UseGroups = "group"

// actionLocalOnly is what a broadcast does when Redis cannot be reached.
const actionLocalOnly = "delivered to this instance's members only (other instances miss it)"

var errGroupsClosed = errors.New("redisstore: groups closed")

// Groups makes wsguard.Group values that span every instance using the
// same Redis and prefix: one pub/sub channel per group, each broadcast
// published once and encoded once per instance, each instance delivering
// it to its own members. Take one Groups per process ([Store.Groups]); all
// its groups share one Redis connection for receiving.
//
// When Redis cannot be reached there is one fail mode, and it is open:
// members on the broadcasting instance get the message as always, the
// other instances miss it, and the failure is logged at warn level
// ("redis store unreachable", use "group") and reported as a
// wsguard.EventStoreError through the logger and observer of the server
// whose ctx the broadcast was given; Group.Broadcast returns the error.
// The subscription reconnects and resubscribes by itself; broadcasts made
// while it was down are not replayed.
type Groups struct {
	s        *Store
	instance string // marks this process's own messages, which it has delivered already

	mu     sync.Mutex
	ps     *redis.PubSub             // nil until the first group
	groups map[string]*wsguard.Group // by channel
	done   chan struct{}             // closed when the receiver ends
	closed bool
}

// Groups returns the store's cross-instance broadcast groups.
func (s *Store) Groups() *Groups {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Groups{s: s, instance: hex.EncodeToString(b[:]), groups: make(map[string]*wsguard.Group)}
}

func (gs *Groups) channel(name string) string { return gs.s.prefix + "group:" + name }

// Group returns the group of that name, the same one on every call until
// it is dropped ([Groups.Drop]), subscribed on first use. The
// subscription is bounded by the store's timeout; when Redis cannot be
// reached the group is returned with the error, and it serves this
// instance's members and receives other instances' broadcasts once the
// subscription is made again by the client's reconnection.
func (gs *Groups) Group(ctx context.Context, name string) (*wsguard.Group, error) {
	ch := gs.channel(name)
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.closed {
		return nil, errGroupsClosed
	}
	if g, ok := gs.groups[ch]; ok {
		return g, nil
	}
	g := wsguard.NewGroup(&relay{gs: gs, channel: ch})
	gs.groups[ch] = g
	cctx, cancel := gs.s.ctx(ctx)
	defer cancel()
	var err error
	if gs.ps == nil {
		// The client records the channel and subscribes to it on every
		// reconnection, whether or not this first attempt succeeds.
		gs.ps = gs.s.c.Subscribe(cctx, ch)
		_, err = gs.ps.Receive(cctx)
		gs.done = make(chan struct{})
		go gs.receive(gs.ps.Channel(), gs.done)
	} else {
		err = gs.ps.Subscribe(cctx, ch)
	}
	if err != nil {
		err = fmt.Errorf("redisstore: subscribe to group %s: %w", name, err)
		gs.s.failed(ctx, UseGroups, "not subscribed yet: other instances' broadcasts arrive once the client reconnects", err)
		return g, err
	}
	return g, nil
}

// Drop unsubscribes from the group of that name and forgets it: the next
// [Groups.Group] of that name makes a new one. Drop a group when its last
// member has left; a Group kept after Drop still broadcasts to other
// instances but no longer receives from them.
func (gs *Groups) Drop(ctx context.Context, name string) error {
	ch := gs.channel(name)
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if _, ok := gs.groups[ch]; !ok || gs.ps == nil {
		return nil
	}
	delete(gs.groups, ch)
	cctx, cancel := gs.s.ctx(ctx)
	defer cancel()
	if err := gs.ps.Unsubscribe(cctx, ch); err != nil {
		return fmt.Errorf("redisstore: unsubscribe from group %s: %w", name, err)
	}
	return nil
}

// Close stops receiving for every group and waits for deliveries in
// progress. Groups made before keep their local members.
func (gs *Groups) Close() error {
	gs.mu.Lock()
	ps, done := gs.ps, gs.done
	gs.closed, gs.ps = true, nil
	gs.mu.Unlock()
	if ps == nil {
		return nil
	}
	err := ps.Close()
	<-done
	return err
}

// receive delivers other instances' broadcasts to this instance's members.
func (gs *Groups) receive(msgs <-chan *redis.Message, done chan<- struct{}) {
	defer close(done)
	for m := range msgs {
		instance, typ, data, ok := decodeBroadcast(m.Payload)
		if !ok || instance == gs.instance {
			continue
		}
		gs.mu.Lock()
		g := gs.groups[m.Channel]
		gs.mu.Unlock()
		if g != nil {
			g.Deliver(typ, data)
		}
	}
}

// A broadcast on the wire: the publishing instance (16 hex digits), the
// message type (one byte), the message.
const instanceLen = 16

func encodeBroadcast(instance string, typ wsguard.MessageType, p []byte) []byte {
	b := make([]byte, 0, instanceLen+1+len(p))
	b = append(b, instance...)
	b = append(b, byte(typ))
	return append(b, p...)
}

func decodeBroadcast(s string) (instance string, typ wsguard.MessageType, p []byte, ok bool) {
	if len(s) < instanceLen+1 {
		return "", 0, nil, false
	}
	typ = wsguard.MessageType(s[instanceLen])
	if typ != wsguard.MessageText && typ != wsguard.MessageBinary {
		return "", 0, nil, false
	}
	// One copy per instance, shared by all its members.
	return s[:instanceLen], typ, []byte(s[instanceLen+1:]), true
}

// relay is a group's wsguard.Relay.
type relay struct {
	gs      *Groups
	channel string
}

// Publish implements wsguard.Relay with one PUBLISH, bounded by the
// store's timeout and ctx.
func (r *relay) Publish(ctx context.Context, typ wsguard.MessageType, p []byte) error {
	cctx, cancel := r.gs.s.ctx(ctx)
	defer cancel()
	if err := r.gs.s.c.Publish(cctx, r.channel, encodeBroadcast(r.gs.instance, typ, p)).Err(); err != nil {
		r.gs.s.failed(ctx, UseGroups, actionLocalOnly, err)
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	return nil
}
