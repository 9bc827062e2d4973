package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/internal/redistest"
	"github.com/wsguard/kit/store/redisstore"
)

// readChat reads c's next message, which must be a chat message.
func readChat(t *testing.T, c *websocket.Conn) chatMsg {
	t.Helper()
	var m chatMsg
	got := read(t, c)
	if err := json.Unmarshal([]byte(got), &m); err != nil || m.Type != "message" {
		t.Fatalf("got %s, want a chat message", got)
	}
	return m
}

// TestRoomsSpanInstances runs two chat servers on one Redis, with a
// member of the lobby on each: what either says reaches both, once. The
// count and the join notices are of each instance's own members.
func TestRoomsSpanInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	servers := make([]*testServer, 2)
	for i := range servers {
		rc := srv.Client()
		t.Cleanup(func() { _ = rc.Close() })
		// Cleanups run last first: the server stops before its client.
		servers[i] = startServer(t, config{redis: rc})
	}
	ada, bob := servers[0].connect(t, "Ada"), servers[1].connect(t, "Bob")
	for _, c := range []*websocket.Conn{ada, bob} {
		send(t, c, `{"type":"join","room":"lobby"}`)
		if got, want := read(t, c), `{"type":"joined","room":"lobby","members":1,`; !strings.HasPrefix(got, want) {
			t.Errorf("got %s, want %s...", got, want)
		}
	}

	steps := []struct {
		from    *websocket.Conn
		name    string
		text    string
		hearers []*websocket.Conn
	}{
		{ada, "Ada", "hello from the first", []*websocket.Conn{ada, bob}},
		{bob, "Bob", "hello from the second", []*websocket.Conn{bob, ada}},
	}
	for _, s := range steps {
		send(t, s.from, `{"type":"say","text":"`+s.text+`"}`)
		for _, c := range s.hearers {
			// Ada's first message after joining is Bob's, not a notice
			// that Bob joined elsewhere.
			if m := readChat(t, c); m.From != s.name || m.Text != s.text {
				t.Errorf("got %+v, want %q from %s", m, s.text, s.name)
			}
		}
	}

	// A second member on the first instance counts there; Bob, on the
	// other, hears nothing of it until Carol speaks, once.
	carol := servers[0].connect(t, "Carol")
	send(t, carol, `{"type":"join","room":"lobby"}`)
	if got, want := read(t, carol), `{"type":"joined","room":"lobby","members":2,`; !strings.HasPrefix(got, want) {
		t.Errorf("got %s, want %s...", got, want)
	}
	if got, want := read(t, ada), `{"type":"presence","event":"join","room":"lobby","name":"Carol","sub":"guest-`; !strings.HasPrefix(got, want) {
		t.Errorf("got %s, want %s...", got, want)
	}
	send(t, carol, `{"type":"say","text":"and me"}`)
	for _, c := range []*websocket.Conn{carol, ada, bob} {
		if m := readChat(t, c); m.From != "Carol" || m.Text != "and me" {
			t.Errorf("got %+v", m)
		}
	}
	send(t, bob, `{"type":"say","text":"welcome"}`)
	for _, c := range []*websocket.Conn{bob, ada, carol} {
		if m := readChat(t, c); m.Text != "welcome" {
			t.Errorf("got %+v", m)
		}
	}

	// Without Redis, the first instance's room goes on among its own
	// members, and the message the other missed is logged.
	srv.Stop()
	send(t, ada, `{"type":"say","text":"redis is down"}`)
	for _, c := range []*websocket.Conn{ada, carol} {
		if m := readChat(t, c); m.Text != "redis is down" {
			t.Errorf("got %+v", m)
		}
	}
	lines := servers[0].logs.WaitFor(t, "redis store unreachable", 5*time.Second)
	if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["use"] != redisstore.UseGroups {
		t.Errorf("lines %v", lines)
	}
	if strings.Contains(servers[0].logs.String(), "redis is down") {
		t.Error("the log holds a message's text")
	}
}

// TestRedisAddrUnreachable checks that a -redis-addr that does not answer
// stops the start-up with an error naming the flag.
func TestRedisAddrUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	rc, err := dialRedis(addr)
	if err == nil {
		_ = rc.Close()
		t.Fatal("dialRedis succeeded without a Redis")
	}
	if !strings.Contains(err.Error(), "-redis-addr "+addr) {
		t.Errorf("error %q does not name the flag", err)
	}
}
