package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsguard/kit/wsguard"
)

// Room is a broadcast server under test: every connection that opens
// joins it, and Broadcast sends a message to every member.
type Room interface {
	http.Handler
	// Broadcast sends p to every member. It may keep p.
	Broadcast(p []byte)
	// Len returns the number of members.
	Len() int
	// Close ends the room's own goroutines, if any.
	Close()
}

// RoomVariant is one way of broadcasting.
type RoomVariant struct {
	// Name is the variant's row name: "group" (wsguard.Group, the
	// reference), "naive" (wsguard with a loop of synchronous Sends) or
	// "gorilla-hub".
	Name string
	// New returns a fresh room.
	New func() Room
}

// FanoutQueueBytes and FanoutQueueMessages are the send queue bound of
// the group variant in the benchmarks, smaller than the default so that
// a member that does not read is cut within a short run.
const (
	FanoutQueueBytes    = 64 << 10
	FanoutQueueMessages = 256
)

// NaiveWriteTimeout is the naive variant's write timeout, a tenth of the
// default so that a run with members that do not read stays short: each
// of them holds the loop this long once, before it is dropped.
const NaiveWriteTimeout = time.Second

// RoomVariants returns the broadcast variants, the reference first.
func RoomVariants() []RoomVariant {
	return []RoomVariant{
		{Name: "group", New: newGroupRoom},
		{Name: "naive", New: newNaiveRoom},
		{Name: "gorilla-hub", New: newHubRoom},
	}
}

// groupRoom broadcasts with wsguard.Group: encoded once, queued to each
// member, never waiting on one.
type groupRoom struct {
	*wsguard.Server
	g *wsguard.Group
}

func newGroupRoom() Room {
	g := wsguard.NewGroup(nil)
	opts := append(GuardOptions(),
		wsguard.WithSendQueue(FanoutQueueBytes, FanoutQueueMessages),
		wsguard.WithConnect(func(_ context.Context, c *wsguard.Conn) error {
			g.Join(c)
			return nil
		}))
	return &groupRoom{Server: wsguard.New(ignore, opts...), g: g}
}

var ignore = wsguard.HandlerFunc(func(context.Context, *wsguard.Conn, *wsguard.Message) error { return nil })

func (r *groupRoom) Broadcast(p []byte) {
	_ = r.g.Broadcast(context.Background(), nil, wsguard.MessageText, p)
}
func (r *groupRoom) Len() int { return r.g.Len() }
func (r *groupRoom) Close()   {}

// naiveRoom is a chat room written before the send queue: the sender
// calls Send on each member in turn, waiting for each.
type naiveRoom struct {
	*wsguard.Server
	mu      sync.Mutex
	members map[*wsguard.Conn]struct{}
}

func newNaiveRoom() Room {
	r := &naiveRoom{members: make(map[*wsguard.Conn]struct{})}
	opts := append(GuardOptions(),
		wsguard.WithWriteTimeout(NaiveWriteTimeout),
		wsguard.WithConnect(func(_ context.Context, c *wsguard.Conn) error {
			r.mu.Lock()
			r.members[c] = struct{}{}
			r.mu.Unlock()
			return nil
		}),
		wsguard.WithDisconnect(func(c *wsguard.Conn) {
			r.mu.Lock()
			delete(r.members, c)
			r.mu.Unlock()
		}))
	r.Server = wsguard.New(ignore, opts...)
	return r
}

func (r *naiveRoom) Broadcast(p []byte) {
	r.mu.Lock()
	members := make([]*wsguard.Conn, 0, len(r.members))
	for c := range r.members {
		members = append(members, c)
	}
	r.mu.Unlock()
	for _, c := range members {
		_ = c.Send(context.Background(), wsguard.MessageText, p)
	}
}

func (r *naiveRoom) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}
func (r *naiveRoom) Close() {}

// hubRoom is gorilla/websocket's chat example's hub: one goroutine owns
// the members; each member has a buffered channel drained by a write
// goroutine, and a member whose channel is full is dropped. Each message
// is its own frame (the example joins queued messages with newlines into
// one, which changes what the clients receive).
type hubRoom struct {
	broadcast  chan []byte
	register   chan *hubClient
	unregister chan *hubClient
	quit       chan struct{}
	done       sync.WaitGroup
	members    atomic.Int64
}

type hubClient struct {
	conn *gorilla.Conn
	send chan []byte
}

// hubSendBuffer is the example's per-client channel size.
const hubSendBuffer = 256

func newHubRoom() Room {
	h := &hubRoom{
		broadcast:  make(chan []byte),
		register:   make(chan *hubClient),
		unregister: make(chan *hubClient),
		quit:       make(chan struct{}),
	}
	h.done.Go(h.run)
	return h
}

func (h *hubRoom) run() {
	clients := make(map[*hubClient]bool)
	for {
		select {
		case c := <-h.register:
			clients[c] = true
		case c := <-h.unregister:
			if clients[c] {
				delete(clients, c)
				close(c.send)
			}
		case m := <-h.broadcast:
			for c := range clients {
				select {
				case c.send <- m:
				default:
					close(c.send)
					delete(clients, c)
				}
			}
		case <-h.quit:
			for c := range clients {
				close(c.send)
			}
			return
		}
		h.members.Store(int64(len(clients)))
	}
}

func (h *hubRoom) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &hubClient{conn: conn, send: make(chan []byte, hubSendBuffer)}
	select {
	case h.register <- c:
	case <-h.quit:
		conn.Close()
		return
	}
	go c.writePump()
	// readPump, on the handler's goroutine.
	conn.SetReadLimit(ReadLimit)
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	select {
	case h.unregister <- c:
	case <-h.quit:
	}
	conn.Close()
}

func (c *hubClient) writePump() {
	defer c.conn.Close()
	for m := range c.send {
		_ = c.conn.SetWriteDeadline(time.Now().Add(wsguard.DefaultWriteTimeout))
		if err := c.conn.WriteMessage(gorilla.TextMessage, m); err != nil {
			return
		}
	}
	_ = c.conn.WriteMessage(gorilla.CloseMessage, []byte{})
}

func (h *hubRoom) Broadcast(p []byte) { h.broadcast <- p }
func (h *hubRoom) Len() int           { return int(h.members.Load()) }
func (h *hubRoom) Close() {
	close(h.quit)
	h.done.Wait()
}

// RoomSendBuffer is the send buffer of every socket a room accepts
// ([ServeRoom]). On loopback the kernel grows a socket's send buffer up to
// 4 MiB for a client that does not read, tens of thousands of small
// messages; fixed (Linux doubles the value for its bookkeeping), a silent
// member fills it within about 50 broadcasts, as a slow client on a real
// network does, and every variant lets it go within 350 (the group's and
// the hub's queues hold 256 more). A reader is never more than 16
// broadcasts, about 2 KiB, behind: its socket's buffer never fills.
const RoomSendBuffer = 4 << 10

// sendBufferListener fixes the send buffer of every connection it
// accepts at RoomSendBuffer.
type sendBufferListener struct{ net.Listener }

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(RoomSendBuffer)
	}
	return c, err
}

// FanoutSize is the benchmark's message size.
const FanoutSize = 128

// FanoutWindows are how many broadcasts may be on their way at once: one
// (each waits until every reader has it: latency) and several (a busy
// room: throughput, and what gathering piled-up messages saves).
var FanoutWindows = []int{1, 16}

// SilentMembers is how many of a room's n members do not read, when some
// do not: 1%, at least one.
func SilentMembers(n int) int { return max(1, n/100) }

// RoomServer is a room served on loopback.
type RoomServer struct {
	// Room is the room its connections join.
	Room Room
	// URL is where members connect: ws://127.0.0.1:port.
	URL string
	ts  *httptest.Server
}

// ServeRoom serves a fresh room of v on loopback, with the send buffer of
// every socket it accepts fixed at [RoomSendBuffer].
func ServeRoom(v RoomVariant) *RoomServer {
	room := v.New()
	ts := httptest.NewUnstartedServer(room)
	ts.Listener = sendBufferListener{ts.Listener}
	ts.Start()
	return &RoomServer{Room: room, URL: "ws" + strings.TrimPrefix(ts.URL, "http"), ts: ts}
}

// Close stops the server and the room. The members' connections end as
// their clients drop them ([Fanout.Close]).
func (s *RoomServer) Close() {
	s.ts.CloseClientConnections()
	s.ts.Close()
	s.Room.Close()
}

// Fanout is a room's members, seen from the client side: readers that
// record when each broadcast reaches them, and silent members that never
// read, with a small receive buffer.
type Fanout struct {
	room    Room
	wsURL   string
	readers []*Client
	silent  []*Client
	lat     [][]time.Duration // per reader, since ResetLatency
	held    []time.Duration   // per broadcast call, since ResetLatency
	errs    []error
	arrived []atomic.Int32 // per broadcast, a ring of 2*window: readers that got it
	window  int
	wg      sync.WaitGroup
	n       int // broadcasts the readers wait for
}

// OpenFanout dials readers reading members and silent members that never
// read to wsURL, and waits until room counts them all. Up to window
// broadcasts may be on their way at once ([Fanout.Run]).
func OpenFanout(room Room, wsURL string, readers, silent, window int) (*Fanout, error) {
	f := &Fanout{
		room:    room,
		wsURL:   wsURL,
		readers: make([]*Client, readers),
		silent:  make([]*Client, silent),
		lat:     make([][]time.Duration, readers),
		errs:    make([]error, readers),
		arrived: make([]atomic.Int32, 2*window),
		window:  window,
	}
	err := dialMembers(wsURL, readers+silent, func(i int) (*Client, error) {
		if i < readers {
			c, err := Dial(wsURL, nil, nil)
			f.readers[i] = c
			return c, err
		}
		c, err := DialSilent(wsURL)
		f.silent[i-readers] = c
		return c, err
	})
	if err == nil {
		err = f.awaitMembers(readers + silent)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// dialMembers calls dial for 0 to n-1, a few at a time, and returns the
// first error.
func dialMembers(wsURL string, n int, dial func(i int) (*Client, error)) error {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := dial(i); err != nil {
				mu.Lock()
				first = cmp(first, fmt.Errorf("bench: %s: %w", wsURL, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// awaitMembers waits until the room counts n members.
func (f *Fanout) awaitMembers(n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for f.room.Len() != n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.room.Len(); got != n {
		return fmt.Errorf("bench: room has %d members, want %d", got, n)
	}
	return nil
}

// ReplaceSilent drops the silent members, cut or not, waits until the
// room has let them go, and dials as many new ones: each run of a room
// with silent members then starts with members whose buffers are empty,
// as the first did.
func (f *Fanout) ReplaceSilent() error {
	for i, c := range f.silent {
		_ = c.Close()
		f.silent[i] = nil
	}
	if err := f.awaitMembers(len(f.readers)); err != nil {
		return err
	}
	err := dialMembers(f.wsURL, len(f.silent), func(i int) (*Client, error) {
		c, err := DialSilent(f.wsURL)
		f.silent[i] = c
		return c, err
	})
	if err != nil {
		return err
	}
	return f.awaitMembers(len(f.readers) + len(f.silent))
}

func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// Run makes n broadcasts of FanoutSize bytes with broadcast, at most
// window of them on their way to the readers at once, and waits until
// every reader has them all. It returns the wall time; [Fanout.Latency]
// and [Fanout.Held] add this run's deliveries and broadcast calls. After
// an error, the readers may still wait: Close the Fanout.
func (f *Fanout) Run(broadcast func(p []byte), n int) (time.Duration, error) {
	clear(f.errs)
	f.n = n
	for i, c := range f.readers {
		f.lat[i] = slices.Grow(f.lat[i], n)
		f.wg.Add(1)
		go f.read(i, c)
	}
	ring := len(f.arrived)
	all := int32(len(f.readers))
	f.held = slices.Grow(f.held, n)
	start := time.Now()
	for s := range n {
		if s >= f.window {
			if err := f.await(s-f.window, all); err != nil {
				return 0, err
			}
			f.arrived[(s-f.window)%ring].Store(0)
		}
		p := fanoutPayload(uint64(s), time.Now())
		t0 := time.Now()
		broadcast(p)
		f.held = append(f.held, time.Since(t0))
	}
	for s := max(0, n-f.window); s < n; s++ {
		if err := f.await(s, all); err != nil {
			return 0, err
		}
	}
	took := time.Since(start)
	f.wg.Wait()
	for i := range f.arrived {
		f.arrived[i].Store(0)
	}
	return took, errors.Join(f.errs...)
}

// await waits until every reader has broadcast s.
func (f *Fanout) await(s int, all int32) error {
	slot := &f.arrived[s%len(f.arrived)]
	deadline := time.Now().Add(30 * time.Second)
	for spins := 0; slot.Load() < all; spins++ {
		if spins > 100 {
			time.Sleep(50 * time.Microsecond)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: broadcast %d reached %d of %d readers in 30s: %w", s, slot.Load(), all, errors.Join(f.errs...))
		}
	}
	return nil
}

// read takes f.n broadcasts on reader i.
func (f *Fanout) read(i int, c *Client) {
	defer f.wg.Done()
	buf := make([]byte, FanoutSize)
	for range f.n {
		if err := c.ReadMessage(buf); err != nil {
			f.errs[i] = fmt.Errorf("reader %d: %w", i, err)
			return
		}
		now := time.Now()
		seq, sent := parseFanout(buf)
		f.lat[i] = append(f.lat[i], now.Sub(sent))
		f.arrived[seq%uint64(len(f.arrived))].Add(1)
	}
}

// Latency returns the readers' median and 99th percentile delivery time
// over the runs since the last ResetLatency.
func (f *Fanout) Latency() (p50, p99 time.Duration) {
	return quantiles(slices.Concat(f.lat...))
}

// Held returns the 99th percentile and the longest time a broadcast call
// held the sender, over the runs since the last ResetLatency.
func (f *Fanout) Held() (p99, longest time.Duration) {
	if len(f.held) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(f.held))
	return s[min(len(s)-1, len(s)*99/100)], s[len(s)-1]
}

// ResetLatency forgets the recorded deliveries and broadcast calls.
func (f *Fanout) ResetLatency() {
	for i := range f.lat {
		f.lat[i] = f.lat[i][:0]
	}
	f.held = f.held[:0]
}

// Readers returns the number of reading members.
func (f *Fanout) Readers() int { return len(f.readers) }

// Close drops every member's connection.
func (f *Fanout) Close() {
	for _, c := range slices.Concat(f.readers, f.silent) {
		if c != nil {
			_ = c.Close()
		}
	}
}

// quantiles returns the median and the 99th percentile of ds, sorting
// it.
func quantiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
}

// fanoutPayload is a text message of FanoutSize bytes carrying its
// sequence number and send time in hex.
func fanoutPayload(seq uint64, sent time.Time) []byte {
	p := make([]byte, FanoutSize)
	putHex(p[:16], seq)
	putHex(p[16:32], uint64(sent.UnixNano()))
	copy(p[32:], Text(FanoutSize-32))
	return p
}

func parseFanout(p []byte) (seq uint64, sent time.Time) {
	return getHex(p[:16]), time.Unix(0, int64(getHex(p[16:32])))
}

const hexDigits = "0123456789abcdef"

func putHex(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

func getHex(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= uint64(c - '0')
		case c >= 'a' && c <= 'f':
			v |= uint64(c-'a') + 10
		}
	}
	return v
}
