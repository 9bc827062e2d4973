package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialSilent dials as a member whose socket takes little and who never
// reads, until the test drains it.
func (ts *testServer) dialSilent(t *testing.T, name string) *websocket.Conn {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := new(net.Dialer).DialContext(ctx, network, addr)
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(1024)
		}
		return nc, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, ts.wsURL(), &websocket.DialOptions{
		Subprotocols: []string{subprotocol, "bearer." + ts.token(t, "", name).Token},
		HTTPClient:   &http.Client{Transport: tr},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// smallSendBuffers is a listener whose connections' socket takes little
// to send, so that a client that does not read is seen as such after a
// few messages rather than after the megabytes a loopback socket holds.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return nc, err
}

// latencies records when each numbered message was said and how long
// it took to reach each reader.
type latencies struct {
	mu   sync.Mutex
	said map[int]time.Time
	took map[int][]time.Duration
}

func (l *latencies) say(t *testing.T, c *websocket.Conn, seq int) {
	t.Helper()
	l.mu.Lock()
	l.said[seq] = time.Now()
	l.mu.Unlock()
	// Long enough that the silent member's socket fills in a few
	// hundred messages; short of the 500-character limit.
	send(t, c, fmt.Sprintf(`{"type":"say","text":"%d %s"}`, seq, strings.Repeat("x", 480)))
}

func (l *latencies) heard(text string) int {
	seq, err := strconv.Atoi(strings.Fields(text)[0])
	if err != nil {
		return -1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.took[seq] = append(l.took[seq], time.Since(l.said[seq]))
	return seq
}

// heardBy returns how many readers heard each message before to. l.mu is
// held.
func (l *latencies) heardBy(to int) []int {
	n := make([]int, to)
	for seq := range n {
		n[seq] = len(l.took[seq])
	}
	return n
}

// p99 is the 99th percentile of the delays of messages [from, to).
func (l *latencies) p99(t *testing.T, from, to, readers int) time.Duration {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []time.Duration
	for seq := from; seq < to; seq++ {
		if len(l.took[seq]) != readers {
			t.Fatalf("message %d reached %d readers of %d", seq, len(l.took[seq]), readers)
		}
		all = append(all, l.took[seq]...)
	}
	slices.Sort(all)
	return all[len(all)*99/100]
}

// TestSilentMemberDelaysNoOne fills the send queue of a member that never
// reads while two members speak to a room of readers: the readers' delay
// stays what it was without it, the silent member is cut with 4429 once
// its queue is over the bound, and no one else is closed.
func TestSilentMemberDelaysNoOne(t *testing.T) {
	t.Parallel()
	ts := startServerOn(t, config{sendQueue: 64 << 10}, func(ln net.Listener) net.Listener { return smallSendBuffers{ln} })
	lat := &latencies{said: make(map[int]time.Time), took: make(map[int][]time.Duration)}
	const readers = 4
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	members := make([]*websocket.Conn, readers)
	ended := make([]error, readers) // why a reader stopped, under lat.mu
	for i := range members {
		c := ts.connect(t, fmt.Sprintf("Reader%d", i))
		members[i] = c
		send(t, c, `{"type":"join","room":"lobby"}`)
		wg.Go(func() {
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					lat.mu.Lock()
					ended[i] = err
					lat.mu.Unlock()
					return
				}
				var m chatMsg
				if json.Unmarshal(b, &m) == nil && m.Type == "message" {
					lat.heard(m.Text)
				}
			}
		})
	}
	defer func() {
		for _, c := range members {
			_ = c.Close(websocket.StatusNormalClosure, "")
		}
	}()
	// waitHeard waits until every reader has heard the messages before
	// to, which two speakers may have had broadcast in either order.
	waitHeard := func(to int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			lat.mu.Lock()
			missing := slices.IndexFunc(lat.heardBy(to), func(n int) bool { return n < readers })
			why := slices.Clone(ended)
			lat.mu.Unlock()
			if missing < 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %d has not reached every reader (readers ended: %v)", missing, why)
			}
		}
	}
	// Two speakers at 50 messages a second each, within their rate limit.
	speak := func(from, to int) {
		for seq := from; seq < to; seq++ {
			lat.say(t, members[seq%2], seq)
			time.Sleep(10 * time.Millisecond)
		}
	}
	for ts.members("lobby") != readers {
		time.Sleep(5 * time.Millisecond)
	}
	const before = 100
	speak(0, before)
	waitHeard(before)
	base := lat.p99(t, 0, before, readers)

	silent := ts.dialSilent(t, "Silent")
	send(t, silent, `{"type":"join","room":"lobby"}`)
	for ts.members("lobby") != readers+1 {
		time.Sleep(5 * time.Millisecond)
	}
	// Speak until the silent member is cut, which takes what the sockets
	// hold and then its queue's 64 KiB, and a while after. Once cut, it
	// reads at last, as a client whose network came back would, and
	// finds its close frame behind what its socket held: the close
	// handshake waits for that only a few seconds.
	silentClose := make(chan error, 1)
	seq, cut := before, -1
	for ; seq < before+2000 && (cut < 0 || seq < cut+100); seq++ {
		speak(seq, seq+1)
		if cut < 0 && ts.members("lobby") == readers {
			cut = seq
			wg.Go(func() {
				for {
					if _, _, err := silent.Read(ctx); err != nil {
						silentClose <- err
						return
					}
				}
			})
		}
	}
	if cut < 0 {
		t.Fatalf("the silent member was not cut after %d messages", seq-before)
	}
	waitHeard(seq)
	// A broadcast that waited on the silent member would hold the
	// speaker for the write timeout, 10 s: the bound leaves room for a
	// busy machine and none for that.
	if p99 := lat.p99(t, before, seq, readers); p99 > 3*base+time.Second {
		t.Errorf("the readers' p99 delay went from %v to %v with a silent member", base, p99)
	} else {
		t.Logf("p99 delay %v without the silent member, %v with it (cut after %d messages)", base, p99, cut-before)
	}
	if err := <-silentClose; websocket.CloseStatus(err) != 4429 {
		t.Errorf("the silent member: %v, want close 4429", err)
	}
	lines := ts.logs.WaitFor(t, "connection closed", 10*time.Second)
	if len(lines) != 1 || lines[0]["close"] != float64(4429) || lines[0]["code"] != "resource_exhausted" || lines[0]["payload"] != nil {
		t.Errorf("closing lines %v, want the silent member's only, with 4429", lines)
	}
	// The speakers are still in the room and heard.
	speak(seq, seq+2)
	waitHeard(seq + 2)
}

// members returns the number of members of the room called name.
func (ts *testServer) members(name string) int {
	h := ts.app.Load().hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.rooms[name]; r != nil {
		return r.local.Len()
	}
	return 0
}

// TestLateLeaveKeepsNewRoom has a member leave the room's groups before
// the hub hears of it, as a member cut for its queue does, while the
// room empties and a new room of the same name opens: the late leave
// must not forget the new room.
func TestLateLeaveKeepsNewRoom(t *testing.T) {
	t.Parallel()
	ts := startServer(t, config{})
	ada, carol := ts.connect(t, "Ada"), ts.connect(t, "Carol")
	send(t, ada, `{"type":"join","room":"lobby"}`)
	_ = read(t, ada)
	send(t, carol, `{"type":"join","room":"lobby"}`)
	_ = read(t, carol)
	_ = read(t, ada) // Carol joined

	h := ts.app.Load().hub
	h.mu.Lock()
	for c, m := range h.in {
		if m.who.name == "Ada" {
			m.room.remove(c) // as the server does when it cuts a member
		}
	}
	h.mu.Unlock()
	send(t, carol, `{"type":"join","room":"kitchen"}`) // the lobby is empty
	_ = read(t, carol)
	dan := ts.connect(t, "Dan")
	send(t, dan, `{"type":"join","room":"lobby"}`) // a new lobby
	if got, want := read(t, dan), `{"type":"joined","room":"lobby","members":1,`; !strings.HasPrefix(got, want) {
		t.Fatalf("got %s, want %s...", got, want)
	}
	_ = ada.Close(websocket.StatusNormalClosure, "")
	ts.logs.WaitFor(t, "connection closed", 5*time.Second)
	if n := ts.members("lobby"); n != 1 {
		t.Errorf("the new lobby has %d members, want Dan", n)
	}
	send(t, dan, `{"type":"say","text":"still here"}`)
	var m chatMsg
	if err := json.Unmarshal([]byte(read(t, dan)), &m); err != nil || m.Text != "still here" {
		t.Errorf("got %+v, %v", m, err)
	}
}
