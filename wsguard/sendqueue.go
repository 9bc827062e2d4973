package wsguard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/wsguard/kit/errlog"
)

// Defaults of [WithSendQueue]: the bound of each connection's outbound
// queue. Centrifuge cuts a client whose queue passes 10 MB; a queue here
// holds messages a client has not taken yet, so a smaller bound cuts a
// stalled reader sooner and caps what it costs the server.
const (
	DefaultSendQueueBytes    = 1 << 20
	DefaultSendQueueMessages = 1024
)

// LimitSendQueue is the reason of the [EventLimited] reported when a
// connection is closed because its send queue went over its bound.
const LimitSendQueue = "send_queue"

// maxBatch bounds the bytes a connection's writer gathers for one write to
// the socket.
const maxBatch = 64 << 10

var errSendQueue = errors.New("send queue over its bound: the client is not reading")

// outMsg is a queued message. Its data is shared (a [Group] queues one
// slice to every member) and never modified.
type outMsg struct {
	typ  MessageType
	data []byte
}

// sendQueue is a connection's outbound queue. An idle connection holds no
// buffer and no goroutine: the writer goroutine starts with the first
// queued message and ends when the queue is empty.
type sendQueue struct {
	mu      sync.Mutex
	msgs    []outMsg // waiting for the writer
	pending int      // messages queued and not yet written
	bytes   int      // bytes of those
	running bool     // the writer goroutine is running
	cut     bool     // over the bound: the connection is closing
}

// WithSendQueue bounds each connection's outbound queue, the messages
// given to [Conn.Enqueue] (and so to [Group] broadcasts) that the client
// has not taken yet: at most maxBytes bytes and maxMessages messages. A
// connection whose queue would pass either bound is closed with 4429
// (errlog.ResourceExhausted) and reported as an [EventLimited] of reason
// [LimitSendQueue]; the sender is not affected. The defaults are
// [DefaultSendQueueBytes] and [DefaultSendQueueMessages]. Both must be
// >= 1: there is no unbounded queue, and zero is refused.
func WithSendQueue(maxBytes, maxMessages int) Option {
	return func(c *config) {
		if maxBytes < 1 || maxMessages < 1 {
			misconfigured(fmt.Sprintf("WithSendQueue(%d, %d)", maxBytes, maxMessages), "both must be >= 1")
		}
		c.queueBytes, c.queueMessages = maxBytes, maxMessages
	}
}

// Enqueue queues one message for the connection and returns at once: it
// never waits on the client, and it takes no context because there is
// nothing to wait for. The connection's writer sends queued messages in
// order, several per write to the socket when they pile up, each bounded
// by the write timeout as [Conn.Send] is. p is kept until it is written
// and must not be modified after the call; it may be shared with other
// connections.
//
// When the message would take the queue over its bound ([WithSendQueue])
// the client is not reading fast enough: the connection is closed with
// 4429 (errlog.ResourceExhausted; its closing log line says code
// resource_exhausted and carries no payload) and the queued messages are
// dropped. 4429 rather than 1008: the client did nothing wrong by the
// protocol, its network or device is too slow for the stream, and a
// client that follows the code table backs off and reconnects, which is
// what it should do. The close frame reaches it only if its socket
// drains within the close handshake's few seconds; otherwise it sees 1006.
//
// Enqueue returns nil once the message is queued, and an error wrapping
// [ErrClosed] when the connection has ended or has just been closed for
// going over the bound. The error carries no errlog code, as Send's does
// not: the caller is not at fault for another connection's slowness.
//
// Messages written with [Conn.Send] do not wait behind queued ones: use
// one of the two for a stream whose order matters.
func (c *Conn) Enqueue(typ MessageType, p []byte) error {
	if c.end.Load() != nil {
		return fmt.Errorf("wsguard: enqueue: %w", ErrClosed)
	}
	q := &c.queue
	cfg := &c.srv.cfg
	q.mu.Lock()
	if q.cut {
		q.mu.Unlock()
		return fmt.Errorf("wsguard: enqueue: %w", ErrClosed)
	}
	if q.pending+1 > cfg.queueMessages || q.bytes+len(p) > cfg.queueBytes {
		n, b := q.pending, q.bytes
		q.cut, q.msgs, q.pending, q.bytes = true, nil, 0, 0
		q.mu.Unlock()
		c.cutSlow(n, b)
		return fmt.Errorf("wsguard: enqueue: %w (%w)", ErrClosed, errSendQueue)
	}
	q.msgs = append(q.msgs, outMsg{typ, p})
	q.pending++
	q.bytes += len(p)
	depth := q.pending
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if o := c.srv.obs; o != nil {
		o.Observe(c.ctx, Event{Kind: EventSendQueued, Size: depth, Conn: c})
	}
	if start {
		go c.drain()
	}
	return nil
}

// cutSlow closes a connection whose queue went over its bound. The close
// handshake waits on a client that is not reading, so it runs on a
// goroutine of its own, bounded by the handshake's timeout: the sender
// goes on at once. The connection leaves its groups first, so that
// broadcasts skip it while it closes.
func (c *Conn) cutSlow(msgs, bytes int) {
	err := errlog.NewError(errlog.ResourceExhausted,
		fmt.Errorf("%w (%d messages, %d bytes waiting)", errSendQueue, msgs, bytes))
	if o := c.srv.obs; o != nil {
		o.Observe(c.ctx, Event{Kind: EventLimited, Code: errlog.ResourceExhausted, Reason: LimitSendQueue, Err: err, Conn: c})
	}
	go func() {
		c.leaveGroups()
		c.fail(err, nil)
	}()
}

// drain is the connection's writer: it writes queued messages until the
// queue is empty, then ends. Messages that piled up while it wrote are
// gathered into few writes to the socket.
func (c *Conn) drain() {
	q := &c.queue
	var batch []outMsg
	for {
		q.mu.Lock()
		ended := q.cut || c.end.Load() != nil
		if len(q.msgs) == 0 || ended {
			q.running, q.msgs = false, nil
			if ended {
				q.pending, q.bytes = 0, 0
			}
			q.mu.Unlock()
			return
		}
		// The two slices take turns, so that a busy queue does not
		// allocate a backing array per batch.
		batch, q.msgs = q.msgs, batch[:0]
		q.mu.Unlock()

		n, size := len(batch), 0
		for _, m := range batch {
			size += len(m.data)
		}
		ok := c.writeBatch(batch)
		clear(batch) // the messages' data is not kept past its write
		batch = batch[:0]
		q.mu.Lock()
		if !q.cut {
			q.pending -= n
			q.bytes -= size
		}
		if !ok {
			q.running, q.msgs, q.pending, q.bytes = false, nil, 0, 0
		}
		q.mu.Unlock()
		if !ok {
			return
		}
	}
}

// writeBatch writes msgs, gathering them into few socket writes, and
// reports whether the connection goes on.
func (c *Conn) writeBatch(msgs []outMsg) bool {
	if len(msgs) > 1 {
		c.out.gather()
	}
	for i, m := range msgs {
		if i == len(msgs)-1 {
			// The last message's write carries the batch to the socket,
			// under Send's write timeout.
			c.out.release()
		}
		if err := c.Send(context.Background(), m.typ, m.data); err != nil {
			c.out.flush()
			return false
		}
	}
	return true
}

// batchWriter writes the connection's frames to the socket: each in one
// write, or, while the connection's writer gathers a batch, into a buffer
// that goes to the socket in one write. Gathering is what saves the system
// calls when messages pile up.
//
// Data frames, pings and pongs are written here ([batchWriter.frame],
// [batchWriter.control]). The transport writes only close frames through
// Write (and pongs while it reads a close handshake), each whole in one
// call: its buffered writer is larger than any control frame.
type batchWriter struct {
	nc      net.Conn
	mu      sync.Mutex
	buf     *[]byte // the gathered bytes; nil when none
	holding bool    // writes are gathered, not passed on
	closed  bool    // a close frame has been written: no frame may follow
	hdr     [10]byte
	vecs    [2][]byte   // a long frame's header and payload
	vec     net.Buffers // over vecs, for one writev

	// A timed write (a Send's) calls blocked before it waits on the
	// client, to arm the write timeout: a write the socket takes at once,
	// tried first through the socket's RawConn, arms no timer.
	blocked  func()
	timed    bool            // the write under way is timed
	raw      syscall.RawConn // nil: no first try, blocked is called before every timed write
	tryWrite func(fd uintptr) bool
	try      []byte // what tryWrite writes
	tried    int    // what it wrote
	tryErr   error
}

var batchBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, maxBatch)
	return &b
}}

// gather starts gathering writes.
func (w *batchWriter) gather() {
	w.mu.Lock()
	w.holding = true
	w.mu.Unlock()
}

// release ends gathering: the next write takes what was gathered with it.
func (w *batchWriter) release() {
	w.mu.Lock()
	w.holding = false
	w.mu.Unlock()
}

// Write implements io.Writer for the transport.
func (w *batchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, net.ErrClosed
	}
	if len(p) > 0 && p[0]&0x0f == opClose {
		w.closed = true
	}
	if err := w.out(nil, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// frame writes p as one final frame of opcode op. A timed write calls
// w.blocked if it has to wait for the client.
func (w *batchWriter) frame(op byte, p []byte, timed bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return net.ErrClosed
	}
	w.timed = timed
	err := w.out(w.header(op, len(p)), p)
	w.timed = false
	return err
}

// control writes a ping or a pong, unless a close frame has gone out.
func (w *batchWriter) control(op byte, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	return w.out(w.header(op, len(p)), p)
}

// header encodes the header of a server frame (unmasked, final) in w.hdr.
func (w *batchWriter) header(op byte, n int) []byte {
	w.hdr[0] = 0x80 | op
	switch {
	case n <= maxControlPayload:
		w.hdr[1] = byte(n)
		return w.hdr[:2]
	case n <= 0xffff:
		w.hdr[1] = 126
		binary.BigEndian.PutUint16(w.hdr[2:], uint16(n))
		return w.hdr[:4]
	}
	w.hdr[1] = 127
	binary.BigEndian.PutUint64(w.hdr[2:], uint64(n))
	return w.hdr[:10]
}

// out writes the frame of header h and payload p, or gathers it.
func (w *batchWriter) out(h, p []byte) error {
	n := len(h) + len(p)
	if w.holding {
		if w.buf == nil {
			w.buf = batchBufs.Get().(*[]byte)
		}
		if len(*w.buf)+n > maxBatch {
			if err := w.writeOut(); err != nil {
				return err
			}
			if n > maxBatch {
				return w.write(h, p)
			}
		}
		*w.buf = append(append(*w.buf, h...), p...)
		return nil
	}
	if w.buf == nil {
		return w.write(h, p)
	}
	// Released: what was gathered goes first, with this frame when it fits.
	defer w.put()
	if len(*w.buf)+n <= maxBatch {
		*w.buf = append(append(*w.buf, h...), p...)
		return w.writeOut()
	}
	if err := w.writeOut(); err != nil {
		return err
	}
	return w.write(h, p)
}

// write writes h and p to the socket in one system call: copied together
// when short, else as a vector (two writes on a socket without writev).
func (w *batchWriter) write(h, p []byte) error {
	if len(h)+len(p) <= readBufSize {
		b := readBufs.Get().(*[]byte)
		*b = append(append((*b)[:0], h...), p...)
		err := w.send(*b)
		*b = (*b)[:0]
		readBufs.Put(b)
		return err
	}
	if w.timed {
		w.blocked()
	}
	w.vecs = [2][]byte{h, p}
	w.vec = w.vecs[:]
	_, err := w.vec.WriteTo(w.nc)
	w.vecs, w.vec = [2][]byte{}, nil
	return err
}

func (w *batchWriter) writeOut() error {
	err := w.send(*w.buf)
	*w.buf = (*w.buf)[:0]
	return err
}

// send writes b. A timed write is first tried once without waiting;
// only what the socket did not take then waits, after w.blocked.
func (w *batchWriter) send(b []byte) error {
	if w.timed {
		if w.raw != nil {
			w.try, w.tried, w.tryErr = b, 0, nil
			err := w.raw.Write(w.tryWrite)
			n := w.tried
			w.try = nil
			if err == nil {
				err = w.tryErr
			}
			if err != nil || n == len(b) {
				return err
			}
			b = b[n:]
		}
		w.blocked()
	}
	_, err := w.nc.Write(b)
	return err
}

// writeSocket is the first try of a timed write: one write system call,
// whatever it takes.
func (w *batchWriter) writeSocket(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.try)
		switch err {
		case nil:
			w.tried = n
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
		default:
			w.tryErr = &net.OpError{Op: "write", Net: w.nc.LocalAddr().Network(), Source: w.nc.LocalAddr(),
				Addr: w.nc.RemoteAddr(), Err: os.NewSyscallError("write", err)}
		}
		return true
	}
}

// flush writes what is gathered, if anything, and stops gathering: after
// a failed write, bytes of another writer (the close frame) may be among
// them. The connection is ending, so the write is bounded by its close.
func (w *batchWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holding = false
	if w.buf == nil {
		return
	}
	if len(*w.buf) > 0 {
		_, _ = w.nc.Write(*w.buf)
	}
	w.put()
}

func (w *batchWriter) put() {
	*w.buf = (*w.buf)[:0]
	batchBufs.Put(w.buf)
	w.buf = nil
}
