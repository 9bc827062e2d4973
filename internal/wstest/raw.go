// Package wstest holds test helpers shared by this module's packages: a raw
// WebSocket client that writes hand-made frames (to send what a well-behaved
// client library refuses to: invalid UTF-8, oversized or unmasked frames,
// no answer to pings) and a log capture.
package wstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Opcodes of RFC 6455.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// Raw is a hand-driven WebSocket client connection.
type Raw struct {
	Conn net.Conn
	br   *bufio.Reader
	// Response is the server's handshake response.
	Response *http.Response
}

// DialRaw performs the opening handshake against wsURL ("ws://host/path")
// with the extra headers given, and returns the connection whatever the
// status; the caller checks Response.StatusCode.
func DialRaw(t testing.TB, wsURL string, header http.Header) *Raw {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return DialRawConn(t, nc, wsURL, header, nil)
}

// DialRawConn performs the opening handshake for wsURL on nc (a TLS
// client, for one), as DialRaw does. early is written in the same write
// as the request: frames pipelined behind the handshake, or nil.
func DialRawConn(t testing.TB, nc net.Conn, wsURL string, header http.Header, early []byte) *Raw {
	t.Helper()
	t.Cleanup(func() { nc.Close() })
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	req := UpgradeRequest(u, header)
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		t.Fatal(err)
	}
	b.Write(early)
	if _, err := nc.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	return &Raw{Conn: nc, br: br, Response: resp}
}

// UpgradeRequest returns the opening handshake request for u with a
// fresh key and the extra headers given, ready for Request.Write.
func UpgradeRequest(u *url.URL, header http.Header) *http.Request {
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := &http.Request{
		Method: http.MethodGet,
		URL:    &url.URL{Path: u.Path, RawQuery: u.RawQuery},
		Host:   u.Host,
		Header: http.Header{
			"Upgrade":               {"websocket"},
			"Connection":            {"Upgrade"},
			"Sec-WebSocket-Version": {"13"},
			"Sec-WebSocket-Key":     {base64.StdEncoding.EncodeToString(key[:])},
		},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return req
}

// WriteFrame writes one masked frame.
func (r *Raw) WriteFrame(fin bool, opcode byte, payload []byte) error {
	return r.WriteFrameHeader(fin, opcode, uint64(len(payload)), payload)
}

// WriteFrameHeader writes a masked frame that claims length n but carries
// only payload (which may be shorter, to announce a huge frame).
func (r *Raw) WriteFrameHeader(fin bool, opcode byte, n uint64, payload []byte) error {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	return r.WriteBytes(EncodeFrame(b0, true, n, payload))
}

// WriteBytes writes b as it is: hand-made frames, or part of one.
func (r *Raw) WriteBytes(b []byte) error {
	_ = r.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := r.Conn.Write(b)
	return err
}

// CloseWrite half-closes the connection: the server reads EOF, and can
// still write to the client.
func (r *Raw) CloseWrite() error {
	return r.Conn.(interface{ CloseWrite() error }).CloseWrite()
}

// EncodeFrame returns a frame whose first byte is b0 (FIN, RSV bits and
// opcode, as given) and whose header claims length n, carrying payload
// (which may be shorter), masked with a random key when masked is set.
func EncodeFrame(b0 byte, masked bool, n uint64, payload []byte) []byte {
	hdr := []byte{b0}
	var m byte
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		hdr = append(hdr, m|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, m|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, m|127)
		hdr = binary.BigEndian.AppendUint64(hdr, n)
	}
	if !masked {
		return append(hdr, payload...)
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	for i, b := range payload {
		hdr = append(hdr, b^mask[i%4])
	}
	return hdr
}

// Frame is a frame read from the server.
type Frame struct {
	Fin     bool
	Opcode  byte
	Payload []byte
}

// ReadFrame reads one frame from the server, waiting at most d.
func (r *Raw) ReadFrame(d time.Duration) (Frame, error) {
	_ = r.Conn.SetReadDeadline(time.Now().Add(d))
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, Opcode: h[0] & 0x0f}
	if h[1]&0x80 != 0 {
		return Frame{}, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return Frame{}, fmt.Errorf("server frame of %d bytes", n)
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, f.Payload); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// ReadClose reads frames until a close frame, echoes it as a client must,
// and returns its status and reason. Pings are not answered.
func (r *Raw) ReadClose(d time.Duration) (int, string, error) {
	deadline := time.Now().Add(d)
	for {
		f, err := r.ReadFrame(time.Until(deadline))
		if err != nil {
			return 0, "", err
		}
		if f.Opcode != OpClose {
			continue
		}
		_ = r.WriteFrame(true, OpClose, f.Payload)
		if len(f.Payload) < 2 {
			return 1005, "", nil
		}
		return int(binary.BigEndian.Uint16(f.Payload)), string(f.Payload[2:]), nil
	}
}

// Logs is a concurrency-safe buffer for a JSON slog handler, with helpers to
// read the lines back.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines returns the logged lines decoded, failing the test on a line that
// is not one JSON object.
func (l *Logs) Lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not one JSON object: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// Find returns the lines whose msg is msg.
func (l *Logs) Find(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range l.Lines(t) {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// WaitFor polls until a line with msg is logged or d passes, and returns the
// matching lines.
func (l *Logs) WaitFor(t testing.TB, msg string, d time.Duration) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if got := l.Find(t, msg); len(got) > 0 || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Abuse is a bad input that a guarded endpoint must answer by closing with
// Status.
type Abuse struct {
	Name   string
	Send   func(*Raw) error
	Status int
}

// Abuses returns the inputs every hardened example must survive: a binary
// message on a text endpoint, a message over readLimit, invalid UTF-8, and a
// flood of ten messages (the endpoint's burst must be lower).
func Abuses(readLimit int) []Abuse {
	return []Abuse{
		{"binary", func(r *Raw) error { return r.WriteFrame(true, OpBinary, []byte{0}) }, 1003},
		{"over the read limit", func(r *Raw) error { return r.WriteFrame(true, OpText, make([]byte, readLimit+1)) }, 1009},
		{"invalid UTF-8", func(r *Raw) error { return r.WriteFrame(true, OpText, []byte{0xc0, 0xaf}) }, 1007},
		{"flood", func(r *Raw) error {
			for range 10 {
				if err := r.WriteFrame(true, OpText, []byte("x")); err != nil {
					return err
				}
			}
			return nil
		}, 4429},
	}
}
