package wsguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/wsguard/kit/errlog"
)

// frameConn is the hijacked socket as the transport reads it. It follows
// the frame headers of the client's byte stream as the bytes arrive, before
// the transport parses them, to keep promises the transport does not:
//
//   - A frame that breaks RFC 6455 is refused here. The transport would
//     close with its own error text as the reason (one of them echoes the
//     client's byte); refused here, the client sees the code table's text.
//   - Every message, ping and pong is charged to the connection's message
//     bucket as it arrives, in the order it arrives: the transport answers
//     every ping with a write.
//   - A message may have at most maxFrames frames: the read limit counts
//     payload bytes, so empty continuation frames would cost nothing.
//   - A message is complete only once its final frame has arrived in full.
//     The transport reports a connection cut in the middle of a message as
//     that message's clean end; [Conn.read] asks [frameConn.complete].
//
// On a violation Read returns the bytes before the offending frame, then
// the violation from every later call, so the transport never parses that
// frame and its read fails with an error that carries the errlog code.
//
// Only the goroutine reading the transport calls Read; the transport's read
// lock orders the serving goroutine and a closing one.
type frameConn struct {
	net.Conn
	limiter   *rate.Limiter // charged one token per message, ping or pong
	maxFrames int
	pending   []byte // read before the socket: what the HTTP server had buffered

	err      error       // the violation, returned by every Read from then on
	violated atomic.Bool // err is set, for Close on any goroutine

	// The frame being parsed.
	hdr  [maxFrameHeader]byte
	nhdr int   // header bytes collected; 0 while in a payload or between frames
	left int64 // payload bytes of the current frame still to arrive
	op   byte
	fin  bool
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
)

var (
	errMessageRate = errors.New("message rate exceeded")
	errCloseReason = errors.New("close reason is not UTF-8")
	errControlRate = errors.New("ping and pong rate exceeded")
	errFrames      = errors.New("too many frames in one message")
)

func newFrameConn(nc net.Conn, limiter *rate.Limiter, maxFrames int) *frameConn {
	return &frameConn{Conn: nc, limiter: limiter, maxFrames: maxFrames}
}

// Read implements net.Conn.
func (f *frameConn) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	var n int
	var err error
	if len(f.pending) > 0 {
		n = copy(p, f.pending)
		f.pending = f.pending[n:]
	} else {
		n, err = f.Conn.Read(p)
	}
	if n > 0 {
		if k, verr := f.scan(p[:n]); verr != nil {
			f.err = verr
			f.violated.Store(true)
			if k == 0 {
				return 0, verr
			}
			return k, nil
		}
	}
	return n, err
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

// complete reports whether the final frames of the first n messages have
// arrived in full.
func (f *frameConn) complete(n uint64) bool { return f.messages >= n }

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
		if f.fin {
			f.inMessage = false
			f.messages++
		}
	}
	return nil
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
