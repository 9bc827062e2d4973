package wsguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/wsguard/kit/errlog"
)

// Fuzz limits: small, so that short inputs reach them.
const (
	fuzzControlBurst = 6
	fuzzMaxFrames    = 4
)

// chunkConn is a net.Conn whose reads return the given chunks in turn.
type chunkConn struct {
	net.Conn
	chunks [][]byte
}

func (c *chunkConn) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

// maskedFrame is a client frame of first byte b0 and payload, masked with
// the key 1 2 3 4.
func maskedFrame(b0 byte, payload ...byte) []byte {
	b := []byte{b0, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i, c := range payload {
		b = append(b, c^byte(i%4+1))
	}
	return b
}

// cat joins frames into one stream.
func cat(fs ...[]byte) (b []byte) {
	for _, f := range fs {
		b = append(b, f...)
	}
	return b
}

// cutStream cuts stream at the lengths in cuts: the first piece is what
// the HTTP server had buffered, the rest the socket's reads.
func cutStream(stream, cuts []byte) [][]byte {
	var chunks [][]byte
	rest := stream
	for _, c := range cuts {
		n := min(int(c), len(rest))
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
	}
	return append(chunks, rest)
}

// verdict is what a frame checker made of a byte stream.
type verdict struct {
	err       string // the violation's detail, "" when none
	code      errlog.Code
	messages  uint64 // messages complete before the violation or the end
	delivered int    // bytes passed on before the violation

	// Of the reference only:
	payloads    []string // the messages complete before the violation or the end, unmasked
	beforeClose int      // how many of them came before the first close frame; -1: no close frame
}

// readThrough reads stream through a frameConn, the first chunk as bytes
// the HTTP server had buffered, the rest from the socket as cut, each Read
// asking for a size taken from sizes (without sizes: all of it).
func readThrough(stream []byte, cuts, sizes []byte) verdict {
	chunks := cutStream(stream, cuts)
	f := newFrameConn(&chunkConn{chunks: chunks[1:]}, rate.NewLimiter(0, fuzzControlBurst), fuzzMaxFrames)
	f.buffered(chunks[0])
	var v verdict
	buf := make([]byte, max(256, len(stream)))
	for i := 0; ; i++ {
		size := len(buf)
		if len(sizes) > 0 {
			size = 1 + int(sizes[i%len(sizes)])
		}
		n, err := f.Read(buf[:size])
		v.delivered += n
		if err == io.EOF {
			break
		}
		if err != nil {
			e, ok := errors.AsType[*errlog.Error](err)
			if !ok {
				panic("violation without a code: " + err.Error())
			}
			v.code, v.err = e.Code(), errors.Unwrap(e).Error()
			if _, again := f.Read(buf); again != err {
				panic("a later Read does not return the violation")
			}
			break
		}
	}
	v.messages = f.messages
	return v
}

// reference checks stream as a whole, frame by frame, by the rules
// frameConn applies. The offending frame, if any, starts at offset at, and
// end is the end of the bytes that give it away (its header, or a close
// frame's payload); at is -1 when there is none.
func reference(stream []byte) (v verdict, at, end int) {
	fail := func(code errlog.Code, detail string, start, end int) (verdict, int, int) {
		v.code, v.err, v.delivered = code, detail, start
		return v, start, end
	}
	burst, inMessage, frames := fuzzControlBurst, false, 0
	v.beforeClose = -1
	var message []byte
	for i := 0; i < len(stream); {
		start := i
		if stream[i]&0x0f == opClose && v.beforeClose < 0 {
			v.beforeClose = len(v.payloads) // from its first byte on, the frame is the transport's
		}
		if len(stream)-i < 2 {
			break
		}
		b0, b1 := stream[i], stream[i+1]
		i += 2
		n := uint64(b1 & 0x7f)
		switch n {
		case 126, 127:
			w := 2
			if n == 127 {
				w = 8
			}
			if len(stream)-i < w {
				return v, -1, 0
			}
			if w == 2 {
				n = uint64(binary.BigEndian.Uint16(stream[i:]))
			} else {
				n = binary.BigEndian.Uint64(stream[i:])
			}
			i += w
		}
		var mask []byte
		if b1&0x80 != 0 {
			if len(stream)-i < 4 {
				return v, -1, 0
			}
			mask = stream[i : i+4]
			i += 4
		}
		fin, op := b0&0x80 != 0, b0&0x0f
		switch {
		case b0&0x70 != 0:
			return fail(errlog.Protocol, "reserved bits set", start, i)
		case mask == nil:
			return fail(errlog.Protocol, "unmasked frame from a client", start, i)
		case n>>63 != 0:
			return fail(errlog.Protocol, "frame length has its most significant bit set", start, i)
		}
		switch op {
		case opClose, opPing, opPong:
			if !fin {
				return fail(errlog.Protocol, "fragmented control frame", start, i)
			}
			if n > 125 {
				return fail(errlog.Protocol, "control frame over 125 bytes", start, i)
			}
			if op != opClose {
				if burst == 0 {
					return fail(errlog.ResourceExhausted, errControlRate.Error(), start, i)
				}
				burst--
			}
		case opContinuation:
			if !inMessage {
				return fail(errlog.Protocol, "continuation frame outside a message", start, i)
			}
		case opText, opBinary:
			if inMessage {
				return fail(errlog.Protocol, "new message before the previous one's final frame", start, i)
			}
			if burst == 0 {
				return fail(errlog.ResourceExhausted, errMessageRate.Error(), start, i)
			}
			burst--
			inMessage, frames = true, 0
		default:
			return fail(errlog.Protocol, fmt.Sprintf("reserved opcode %#x", op), start, i)
		}
		if op < opClose {
			if frames++; frames > fuzzMaxFrames {
				return fail(errlog.TooLarge, fmt.Sprintf("%v: over %d", errFrames, fuzzMaxFrames), start, i)
			}
		}
		if uint64(len(stream)-i) < n {
			return v, -1, 0
		}
		p := stream[i : i+int(n)]
		i += int(n)
		switch {
		case op == opClose && len(p) == 1:
			return fail(errlog.Protocol, "close frame with a one-byte payload", start, i)
		case op == opClose && len(p) >= 2:
			code := binary.BigEndian.Uint16([]byte{p[0] ^ mask[0], p[1] ^ mask[1]})
			if code < 1000 || code > 4999 || code > 1014 && code < 3000 || code == 1004 || code == 1005 || code == 1006 {
				return fail(errlog.Protocol, fmt.Sprintf("close frame with status %d", code), start, i)
			}
			reason := make([]byte, len(p)-2)
			for j := range reason {
				reason[j] = p[j+2] ^ mask[(j+2)%4]
			}
			if !utf8.Valid(reason) {
				return fail(errlog.InvalidPayload, errCloseReason.Error(), start, i)
			}
		case op < opClose:
			for j, x := range p {
				message = append(message, x^mask[j%4])
			}
			if fin {
				inMessage = false
				v.messages++
				v.payloads = append(v.payloads, string(message))
				message = message[:0]
			}
		}
	}
	return v, -1, 0
}

// FuzzFrameConn checks that frameConn, however the client's bytes are cut
// into reads, reaches the reference's verdict and message count, and never
// lets a byte of an offending frame's end through.
func FuzzFrameConn(f *testing.F) {
	frame := maskedFrame
	f.Add(cat(frame(0x81, 'h', 'i'), frame(0x01, 'a'), frame(0x89), frame(0x80, 'b')), []byte{1, 3, 9}, []byte{0, 5})
	f.Add(cat(frame(0x81), frame(0xC1, 'x')), []byte{7}, []byte{2})
	f.Add(cat(frame(0x88, 0x03, 0xed, 'x')), []byte{2, 2}, []byte{0})
	f.Add(cat(frame(0x01), frame(0x00), frame(0x00), frame(0x00), frame(0x80)), []byte{3}, []byte{1})
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, []byte{1, 1, 1}, []byte{3})
	f.Add([]byte{0x82, 0xfe, 0x00, 0x03, 1, 2, 3, 4, 5, 6, 7}, []byte{4}, []byte{255})
	f.Fuzz(func(t *testing.T, stream, cuts, sizes []byte) {
		want, at, end := reference(stream)
		whole := readThrough(stream, nil, nil)
		got := readThrough(stream, cuts, sizes)
		if whole.err != want.err || whole.code != want.code || whole.messages != want.messages {
			t.Fatalf("in one read: %+v, reference %+v", whole, want)
		}
		if got.err != want.err || got.code != want.code || got.messages != want.messages {
			t.Fatalf("cut at %v: %+v, reference %+v", cuts, got, want)
		}
		if at < 0 {
			if got.delivered != len(stream) {
				t.Fatalf("cut at %v: %d of %d bytes delivered without a violation", cuts, got.delivered, len(stream))
			}
			return
		}
		// Read in one piece, the transport gets exactly the frames before
		// the offending one; cut, at most the part of it that arrived in
		// earlier reads, never the byte that gave it away.
		if whole.delivered != at {
			t.Fatalf("in one read: %d bytes delivered, the offending frame starts at %d", whole.delivered, at)
		}
		if got.delivered < at || got.delivered >= end {
			t.Fatalf("cut at %v: %d bytes delivered, the offending frame is bytes %d to %d", cuts, got.delivered, at, end)
		}
	})
}

// readMessages reads stream, cut as readThrough does, the way a connection
// does: messages through next and read until a close frame is next, then
// the rest through Read as the transport would. It returns the verdict and
// the messages read, and whether a close frame was handed over.
func readMessages(stream, cuts []byte) (v verdict, payloads []string, handed bool) {
	chunks := cutStream(stream, cuts)
	f := newFrameConn(&chunkConn{chunks: chunks[1:]}, rate.NewLimiter(0, fuzzControlBurst), fuzzMaxFrames)
	f.buffered(chunks[0])
	f.answer = func(op byte, p []byte) {
		if op != opPong || len(p) > maxControlPayload {
			panic("a ping answered with something else than a pong")
		}
	}
	f.alive = func() {}
	violation := func(err error) {
		e, ok := errors.AsType[*errlog.Error](err)
		if !ok {
			panic("violation without a code: " + err.Error())
		}
		v.code, v.err = e.Code(), errors.Unwrap(e).Error()
	}
	for {
		_, err := f.next()
		if err == nil {
			var b []byte
			if b, err = f.read(nil, 1<<20); err == nil {
				payloads = append(payloads, string(b))
				continue
			}
		}
		if err == errCloseFrame {
			handed = true
			buf := make([]byte, 64)
			for {
				_, err := f.Read(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					violation(err)
					break
				}
			}
			break
		}
		if err != io.EOF && err != errCut {
			violation(err)
		}
		break
	}
	v.messages = f.messages
	return v, payloads, handed
}

// FuzzMessages checks that the messages the serving goroutine reads are
// the reference's, however the bytes are cut into reads, and that the
// verdict is the same when a close frame hands the stream over midway.
func FuzzMessages(f *testing.F) {
	frame := maskedFrame
	f.Add(cat(frame(0x81, 'h', 'i'), frame(0x01, 'a'), frame(0x89, 'p'), frame(0x80, 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j')), []byte{1, 3, 9})
	f.Add(cat(frame(0x82, 1, 2, 3), frame(0x88, 0x03, 0xe8, 'o', 'k'), frame(0x81, 'x')), []byte{2, 7})
	f.Add(cat(frame(0x01, 'a'), frame(0x88, 0x03, 0xe8), frame(0x80, 'b')), []byte{4})
	f.Add(cat(frame(0x81), frame(0x8A, 1, 2, 3, 4, 5, 6, 7, 8), frame(0xC1, 'x')), []byte{7})
	f.Add([]byte{0x82, 0xfe, 0x00, 0x03, 1, 2, 3, 4, 5, 6, 7}, []byte{4})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		want, _, _ := reference(stream)
		got, payloads, handed := readMessages(stream, cuts)
		if got.err != want.err || got.code != want.code || got.messages != want.messages {
			t.Fatalf("cut at %v: %+v, reference %+v", cuts, got, want)
		}
		expect := want.payloads
		if handed {
			if want.beforeClose < 0 {
				t.Fatalf("cut at %v: handed over with no close frame in the stream", cuts)
			}
			expect = expect[:want.beforeClose]
		}
		if !slices.Equal(payloads, expect) {
			t.Fatalf("cut at %v: messages %q, reference %q", cuts, payloads, expect)
		}
	})
}
