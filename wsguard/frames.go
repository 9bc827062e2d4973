package wsguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/wsguard/kit/errlog"
)

// frameConn is the hijacked socket, and the reader of the client's frames.
// It follows every frame header as the bytes arrive, to keep promises the
// transport does not:
//
//   - A frame that breaks RFC 6455 is refused here. The transport would
//     close with its own error text as the reason (one of them echoes the
//     client's byte); refused here, the client sees the code table's text.
//   - Every message, ping and pong is charged to the connection's message
//     bucket as it arrives, in the order it arrives: every ping is answered
//     with a write.
//   - A message may have at most maxFrames frames: the read limit counts
//     payload bytes, so empty continuation frames would cost nothing.
//   - A message is complete only once its final frame has arrived in full.
//
// The serving goroutine reads messages with [frameConn.next] and
// [frameConn.read]: pings are answered and the keepalive's pongs noted on
// the way, and nothing is buffered while the client is silent (see
// [frameConn.fill]). A close frame is the transport's: once one is next,
// the transport reads the rest of the stream through Read, which passes
// the bytes on as they are checked; it does the same for a close
// handshake the server starts, after skipping the rest of a frame the
// message reader began.
//
// On a violation the bytes before the offending frame are still delivered,
// then the violation is returned from every later call, so the offending
// frame is never parsed further and the read fails with an error that
// carries the errlog code.
type frameConn struct {
	net.Conn
	raw       syscall.RawConn         // the socket's, to wait for bytes without a buffer; nil: read through Conn
	readRaw   func(fd uintptr) bool   // f.readSocket, made once
	limiter   *rate.Limiter           // charged one token per message, ping or pong
	maxFrames int                     // data frames per message
	answer    func(op byte, p []byte) // writes a control frame: the pong to a ping
	alive     func()                  // the pong to the keepalive ping has arrived
	ping      atomic.Uint64           // the keepalive ping's payload while it awaits its pong; 0: none

	// mu orders the serving goroutine and the transport's close handshake,
	// which may run on another goroutine.
	mu   sync.Mutex
	buf  *[]byte // pooled; nil while nothing is buffered
	data []byte  // the bytes read and not yet consumed: a prefix-aligned part of buf
	dst  []byte  // where a raw read puts the bytes instead of buf, when set
	got  int     // a raw read's result
	serr error   // a raw read's error
	rerr error   // the socket's read error, returned once the buffered bytes are consumed

	err       error       // the violation, returned by every read from then on
	violated  atomic.Bool // err is set, for Close on any goroutine
	transport bool        // the transport reads the stream from here on

	// The frame being parsed.
	hdr  [maxFrameHeader]byte
	nhdr int   // header bytes collected; 0 while in a payload or between frames
	left int64 // payload bytes of the current frame still to arrive
	off  int   // payload bytes of the current frame consumed, for the mask
	op   byte
	fin  bool
	open bool // a data frame the message reader began, whose end is not noted yet
	mask [4]byte
	code [2]byte           // a close frame's status
	nctl int               // a close frame's payload bytes so far
	char [utf8.UTFMax]byte // the start of a character of its reason
	nchr int
	bad  error // what is wrong with the close frame, told once it has arrived

	// The message being received.
	inMessage bool   // its first frame has arrived, its final one not in full
	frames    int    // its data frames so far
	messages  uint64 // messages whose final frame has arrived in full
}

const (
	maxFrameHeader    = 14
	maxControlPayload = 125

	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	// readBufSize is the pooled buffer the client's bytes are read into; a
	// payload at least this long is read straight into the message.
	readBufSize = 4 << 10
)

var (
	errMessageRate = errors.New("message rate exceeded")
	errCloseReason = errors.New("close reason is not UTF-8")
	errControlRate = errors.New("ping and pong rate exceeded")
	errFrames      = errors.New("too many frames in one message")

	// errCloseFrame tells the serving goroutine that a close frame is next:
	// the transport reads it and answers.
	errCloseFrame = errors.New("close frame next")
	// errCut is a message cut short: the socket ended in its middle.
	errCut = errors.New("connection cut in the middle of a message")
	// errTaken is a message read after the transport took the stream over.
	errTaken = errors.New("the transport reads the connection")
)

var readBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, readBufSize)
	return &b
}}

func newFrameConn(nc net.Conn, limiter *rate.Limiter, maxFrames int) *frameConn {
	f := &frameConn{Conn: nc, limiter: limiter, maxFrames: maxFrames}
	// Only the standard library's sockets are read through their file
	// descriptor: a wrapper's own Read (TLS, a proxy protocol, counting)
	// must not be bypassed.
	switch s := nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		if raw, err := s.(syscall.Conn).SyscallConn(); err == nil {
			f.raw = raw
			f.readRaw = f.readSocket
		}
	}
	return f
}

// buffered gives f the bytes the HTTP server had read past the handshake.
func (f *frameConn) buffered(b []byte) {
	if len(b) == 0 {
		return
	}
	f.buf = readBufs.Get().(*[]byte)
	f.data = append((*f.buf)[:0], b...)
	*f.buf = f.data[:0]
}

// next waits for the next message's first frame and returns its type,
// answering pings and noting pongs that come before it. It returns
// errCloseFrame when a close frame comes first: the transport reads it.
func (f *frameConn) next() (MessageType, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.frame(); err != nil {
		return 0, err
	}
	return MessageType(f.op), nil
}

// read appends the payload of the message whose first frame next returned
// to b, at most limit+1 bytes of it: b longer than limit is a message over
// the limit. A message the socket ends in the middle of is errCut; one
// whose rest the transport took is errTaken.
func (f *frameConn) read(b []byte, limit int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.transport {
		// A close handshake took the stream over since next: it dropped
		// the rest of this message.
		return b, errTaken
	}
	for {
		for f.left > 0 {
			if f.err != nil {
				return b, f.err
			}
			want := int(min(f.left, limit+1-int64(len(b))))
			var k int
			if len(f.data) == 0 && want >= readBufSize {
				// Straight into the message: no copy, and one system call
				// for as much of the frame as has arrived. b grows with
				// the bytes that arrive, doubling, not to the length the
				// header announces: that costs the client 14 bytes.
				if cap(b)-len(b) < readBufSize {
					b = slices.Grow(b, min(want, max(readBufSize, len(b))))
				}
				f.dst = b[len(b) : len(b)+min(want, cap(b)-len(b))]
				err := f.fill()
				k, f.dst = f.got, nil
				if err != nil {
					return b, cutShort(err)
				}
				b = b[:len(b)+k]
			} else {
				if len(f.data) == 0 {
					if err := f.fill(); err != nil {
						return b, cutShort(err)
					}
				}
				k = min(want, len(f.data))
				b = append(b, f.data[:k]...)
				f.consume(k)
			}
			unmask(b[len(b)-k:], f.mask, f.off)
			f.off += k
			f.left -= int64(k)
			if int64(len(b)) > limit {
				return b, nil
			}
		}
		f.endData()
		if !f.inMessage {
			return b, nil
		}
		if err := f.frame(); err != nil {
			return b, cutShort(err)
		}
	}
}

// cutShort is err met in the middle of a message: the end of the stream is
// the message cut short.
func cutShort(err error) error {
	if err == io.EOF {
		return errCut
	}
	return err
}

// frame parses the next data frame's header, at a frame boundary. The
// control frames before it are read whole and handled; a close frame is
// left for the transport (errCloseFrame).
func (f *frameConn) frame() error {
	for {
		switch {
		case f.err != nil:
			return f.err
		case f.transport:
			return errTaken
		}
		if err := f.want(1); err != nil {
			return err
		}
		if f.data[0]&0x0f == opClose {
			f.transport = true
			return errCloseFrame
		}
		if err := f.want(2); err != nil {
			return err
		}
		n := headerSize(f.data[1])
		if err := f.want(n); err != nil {
			return err
		}
		copy(f.hdr[:], f.data[:n])
		f.consume(n)
		f.off = 0
		if err := f.startFrame(); err != nil {
			f.err = err
			f.violated.Store(true)
			return err
		}
		if f.op != opPing && f.op != opPong {
			f.open = true
			return nil
		}
		k := int(f.left)
		if err := f.want(k); err != nil {
			return err
		}
		p := f.data[:k] // unmasked in the buffer, used before it is consumed
		unmask(p, f.mask, 0)
		if f.op == opPing {
			f.answer(opPong, p)
		} else if k == 8 {
			if v := binary.BigEndian.Uint64(p); v != 0 && f.ping.CompareAndSwap(v, 0) {
				f.alive()
			}
		}
		f.left = 0
		f.consume(k)
	}
}

// want waits until n bytes are buffered.
func (f *frameConn) want(n int) error {
	for len(f.data) < n {
		if err := f.fill(); err != nil {
			return err
		}
	}
	return nil
}

// consume drops the first n buffered bytes; the buffer goes back to its
// pool once it holds none.
func (f *frameConn) consume(n int) {
	f.data = f.data[n:]
	if len(f.data) == 0 && f.buf != nil {
		readBufs.Put(f.buf)
		f.buf, f.data = nil, nil
	}
}

// fill reads more of the client's bytes: after the buffered ones, or into
// f.dst when set (the count is then f.got). A socket read that would block
// gives the buffer back first, so that a silent connection holds none.
func (f *frameConn) fill() error {
	f.got = 0
	if f.rerr != nil {
		return f.rerr
	}
	if f.dst == nil && f.buf != nil {
		n := copy((*f.buf)[:cap(*f.buf)], f.data) // keep a partial header at the start
		f.data = (*f.buf)[:n]
	}
	var err error
	if f.raw != nil {
		f.serr = nil
		if err = f.raw.Read(f.readRaw); err == nil {
			err = f.serr
		}
	} else {
		f.got, err = f.Conn.Read(f.space())
	}
	if f.dst == nil && f.got > 0 {
		f.data = f.data[:len(f.data)+f.got]
	}
	if err == nil && f.got == 0 {
		err = io.EOF
	}
	if err != nil {
		f.rerr = err
		if f.got > 0 {
			return nil
		}
		if len(f.data) == 0 && f.buf != nil {
			readBufs.Put(f.buf)
			f.buf, f.data = nil, nil
		}
		return err
	}
	return nil
}

// space returns where the next read puts the bytes: f.dst when set, else
// after the buffered ones, in a buffer taken from the pool if none is held.
func (f *frameConn) space() []byte {
	if f.dst != nil {
		return f.dst
	}
	if f.buf == nil {
		f.buf = readBufs.Get().(*[]byte)
		f.data = (*f.buf)[:0]
	}
	return (*f.buf)[len(f.data):cap(*f.buf)]
}

// readSocket is the raw read: it returns false, to wait for the socket to
// become readable, when the read would block.
func (f *frameConn) readSocket(fd uintptr) bool {
	b := f.space()
	for {
		n, err := syscall.Read(int(fd), b)
		switch err {
		case nil:
			f.got = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if len(f.data) == 0 && f.buf != nil {
				readBufs.Put(f.buf)
				f.buf, f.data = nil, nil
			}
			return false
		}
		f.serr = &net.OpError{Op: "read", Net: f.LocalAddr().Network(), Source: f.LocalAddr(),
			Addr: f.RemoteAddr(), Err: os.NewSyscallError("read", err)}
		return true
	}
}

// Read implements net.Conn for the transport, which reads through it only
// for a close handshake: it passes the stream on from a frame boundary.
func (f *frameConn) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.transport {
		// The rest of a frame the message reader began is dropped: the
		// transport discards data in a close handshake anyway. Its end is
		// noted even when nothing of it is left (an empty frame, one that
		// ended on the read limit's extra byte), or the client's next
		// message would be taken for a new one inside it.
		for f.open && f.err == nil {
			if f.left == 0 {
				f.endData()
				break
			}
			if len(f.data) == 0 {
				if err := f.fill(); err != nil {
					return 0, err
				}
			}
			k := int(min(f.left, int64(len(f.data))))
			f.consume(k)
			f.left -= int64(k)
		}
		f.transport = true
	}
	if f.err != nil {
		return 0, f.err
	}
	if len(f.data) == 0 {
		if err := f.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, f.data)
	f.consume(n)
	if k, verr := f.scan(p[:n]); verr != nil {
		f.err = verr
		f.violated.Store(true)
		if k == 0 {
			return 0, verr
		}
		return k, nil
	}
	return n, nil
}

// Bounds of what Close reads and drops after a violation.
const (
	lingerTime  = time.Second
	lingerBytes = 256 << 10
)

// Close implements net.Conn. After a violation the client is often still
// sending (a flood); a socket closed with unread bytes is reset by the
// kernel, and the reset can destroy the close frame on its way to the
// client, which then sees 1006 instead of the reason. So the write side
// is shut first (the close frame is followed by FIN), and what the client
// still sends is read and dropped, within bounds, before the socket goes.
func (f *frameConn) Close() error {
	if f.violated.Load() {
		if cw, ok := f.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			_ = f.Conn.SetReadDeadline(time.Now().Add(lingerTime))
			_, _ = io.Copy(io.Discard, io.LimitReader(f.Conn, lingerBytes))
		}
	}
	return f.Conn.Close()
}

// unmask applies a client frame's masking key to b, the payload bytes from
// offset off on, eight bytes at a time.
func unmask(b []byte, key [4]byte, off int) {
	k := [4]byte{key[off&3], key[(off+1)&3], key[(off+2)&3], key[(off+3)&3]}
	k32 := uint64(binary.LittleEndian.Uint32(k[:]))
	k64 := k32 | k32<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= k[i&3]
	}
}

// scan follows the frames in b. On a violation it returns the offset in b
// of the offending frame's first byte (0 when the frame began in an earlier
// read) and the violation.
func (f *frameConn) scan(b []byte) (int, error) {
	start := 0 // where the frame whose header is being collected begins in b
	for i := 0; i < len(b); {
		if f.nhdr == 0 && f.left > 0 {
			k := int(min(f.left, int64(len(b)-i)))
			if f.op == opClose {
				f.closePayload(b[i : i+k])
			}
			f.left -= int64(k)
			i += k
			if f.left == 0 {
				if err := f.endFrame(); err != nil {
					return start, err
				}
			}
			continue
		}
		if f.nhdr == 0 {
			start = i
		}
		need := 2
		if f.nhdr >= 2 {
			need = headerSize(f.hdr[1])
		}
		k := copy(f.hdr[f.nhdr:need], b[i:])
		f.nhdr += k
		i += k
		if f.nhdr < need || need == 2 && headerSize(f.hdr[1]) > 2 {
			continue
		}
		f.nhdr = 0
		if err := f.startFrame(); err != nil {
			return start, err
		}
		if f.left == 0 {
			if err := f.endFrame(); err != nil {
				return start, err
			}
		}
	}
	return len(b), nil
}

// headerSize returns the length of a client frame's header from its second
// byte: the length field and, on a masked frame, the masking key.
func headerSize(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// startFrame checks the header just collected, as RFC 6455 and this
// connection's limits ask.
func (f *frameConn) startFrame() error {
	b0, b1 := f.hdr[0], f.hdr[1]
	f.fin = b0&0x80 != 0
	f.op = b0 & 0x0f
	if b0&0x70 != 0 {
		// No extension is negotiated (compression is off): RSV1-3 must be 0.
		return protocolError("reserved bits set")
	}
	if b1&0x80 == 0 {
		return protocolError("unmasked frame from a client")
	}
	n := uint64(b1 & 0x7f)
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(f.hdr[2:]))
	case 127:
		n = binary.BigEndian.Uint64(f.hdr[2:])
		if n>>63 != 0 {
			return protocolError("frame length has its most significant bit set")
		}
	}
	f.left = int64(n)
	copy(f.mask[:], f.hdr[headerSize(b1)-4:])

	switch f.op {
	case opClose, opPing, opPong:
		if !f.fin {
			return protocolError("fragmented control frame")
		}
		if n > maxControlPayload {
			return protocolError("control frame over 125 bytes")
		}
		f.nctl, f.nchr, f.bad = 0, 0, nil
		if f.op != opClose && !f.limiter.AllowN(time.Now(), 1) {
			return errlog.NewError(errlog.ResourceExhausted, errControlRate)
		}
		return nil
	case opContinuation:
		if !f.inMessage {
			return protocolError("continuation frame outside a message")
		}
	case opText, opBinary:
		if f.inMessage {
			return protocolError("new message before the previous one's final frame")
		}
		if !f.limiter.AllowN(time.Now(), 1) {
			return errlog.NewError(errlog.ResourceExhausted, errMessageRate)
		}
		f.inMessage, f.frames = true, 0
	default:
		return protocolError(fmt.Sprintf("reserved opcode %#x", f.op))
	}
	f.frames++
	if f.frames > f.maxFrames {
		return errlog.NewError(errlog.TooLarge, fmt.Errorf("%w: over %d", errFrames, f.maxFrames))
	}
	return nil
}

// endFrame runs once the current frame's payload has arrived in full.
func (f *frameConn) endFrame() error {
	switch f.op {
	case opClose:
		switch {
		case f.nctl == 1:
			return protocolError("close frame with a one-byte payload")
		case f.bad != nil:
			return f.bad
		case f.nchr > 0: // the reason ends inside a character
			return errlog.NewError(errlog.InvalidPayload, errCloseReason)
		}
	case opPing, opPong:
	default:
		f.endData()
	}
	return nil
}

// endData runs once a data frame's payload has arrived in full.
func (f *frameConn) endData() {
	f.open = false
	if f.fin {
		f.inMessage = false
		f.messages++
	}
}

// closePayload checks the part p of a close frame's payload as it
// arrives, without keeping it: the status must be one a peer may send,
// and the reason UTF-8 (RFC 6455 section 5.5.1), which the transport does
// not check. The first fault is kept in f.bad for endFrame.
func (f *frameConn) closePayload(p []byte) {
	for _, x := range p {
		x ^= f.mask[f.nctl%4]
		f.nctl++
		if f.bad != nil {
			continue
		}
		if f.nctl <= len(f.code) {
			f.code[f.nctl-1] = x
			if f.nctl == len(f.code) {
				if code := binary.BigEndian.Uint16(f.code[:]); !validCloseCode(code) {
					f.bad = protocolError(fmt.Sprintf("close frame with status %d", code))
				}
			}
			continue
		}
		f.char[f.nchr] = x
		f.nchr++
		if !utf8.FullRune(f.char[:f.nchr]) {
			continue
		}
		if r, n := utf8.DecodeRune(f.char[:f.nchr]); r == utf8.RuneError && n <= 1 {
			f.bad = errlog.NewError(errlog.InvalidPayload, errCloseReason)
		}
		f.nchr = 0
	}
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 section 7.4, as the transport checks it).
func validCloseCode(code uint16) bool {
	switch {
	case code == 1004 || code == 1005 || code == 1006 || code == 1015:
		return false
	case code >= 1000 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

func protocolError(detail string) error {
	return errlog.NewError(errlog.Protocol, errors.New(detail))
}
