package bench

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/wsguard/kit/internal/wstest"
)

// Client is a minimal WebSocket client for closed-loop echo load: it sends
// one prepared message and reads the echo back, allocating nothing per
// round trip. It is not safe for concurrent use.
type Client struct {
	nc    net.Conn
	br    *bufio.Reader
	frame []byte // the masked text frame sent on every round trip
	reply []byte
	hdr   [14]byte
}

// Dial opens a WebSocket connection to wsURL ("ws://host/path") with the
// extra handshake headers given, prepared to send payload as a text
// message on every [Client.RoundTrip].
func Dial(wsURL string, header http.Header, payload []byte) (*Client, error) {
	return dial(&net.Dialer{Timeout: 10 * time.Second}, wsURL, header, payload)
}

// DialSilent opens a connection for a client that will not read: its
// receive buffer is set to the minimum before it connects, where the
// system allows.
func DialSilent(wsURL string) (*Client, error) {
	return dial(&net.Dialer{Timeout: 10 * time.Second, Control: smallReceiveBuffer}, wsURL, nil, nil)
}

func dial(d *net.Dialer, wsURL string, header http.Header, payload []byte) (*Client, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, err
	}
	nc, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	req := wstest.UpgradeRequest(u, header)
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := req.Write(nc); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		nc.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("bench: handshake: %s", resp.Status)
	}
	_ = nc.SetDeadline(time.Time{})
	return &Client{
		nc:    nc,
		br:    br,
		frame: maskedFrame(0x1, payload),
		reply: make([]byte, len(payload)),
	}, nil
}

// maskedFrame returns a final, masked frame of the given opcode.
func maskedFrame(opcode byte, payload []byte) []byte {
	n := len(payload)
	f := []byte{0x80 | opcode}
	switch {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	return f
}

var errShortEcho = errors.New("bench: echo of another length")

// RoundTrip sends the message and waits for a data message of the same
// length. Pings are answered on the way.
func (c *Client) RoundTrip() error {
	if _, err := c.nc.Write(c.frame); err != nil {
		return err
	}
	return c.ReadMessage(c.reply)
}

func (c *Client) readHeader() (op byte, n uint64, err error) {
	h := c.hdr[:2]
	if _, err := io.ReadFull(c.br, h); err != nil {
		return 0, 0, err
	}
	if h[0]&0x80 == 0 {
		return 0, 0, errors.New("bench: fragmented server message")
	}
	op, n = h[0]&0x0f, uint64(h[1]&0x7f)
	switch n {
	case 126:
		b := c.hdr[2:4]
		if _, err := io.ReadFull(c.br, b); err != nil {
			return 0, 0, err
		}
		n = uint64(binary.BigEndian.Uint16(b))
	case 127:
		b := c.hdr[2:10]
		if _, err := io.ReadFull(c.br, b); err != nil {
			return 0, 0, err
		}
		n = binary.BigEndian.Uint64(b)
	}
	if n > 1<<20 {
		return 0, 0, fmt.Errorf("bench: server frame of %d bytes", n)
	}
	return op, n, nil
}

// Close drops the connection without a close handshake, with a reset so
// that no socket lingers in TIME_WAIT: a run opens tens of thousands of
// connections, and the ephemeral ports of loopback are fewer.
func (c *Client) Close() error {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c.nc.Close()
}

// ReadMessage reads the next data message, which must be len(buf) bytes
// long, into buf. Pings are answered on the way.
func (c *Client) ReadMessage(buf []byte) error {
	for {
		op, n, err := c.readHeader()
		if err != nil {
			return err
		}
		switch op {
		case 0x1, 0x2:
			if n != uint64(len(buf)) {
				return fmt.Errorf("%w: %d bytes, want %d", errShortEcho, n, len(buf))
			}
			_, err = io.ReadFull(c.br, buf)
			return err
		case 0x9:
			p := make([]byte, n)
			if _, err := io.ReadFull(c.br, p); err != nil {
				return err
			}
			if _, err := c.nc.Write(maskedFrame(0xA, p)); err != nil {
				return err
			}
		case 0x8:
			return errors.New("bench: server closed the connection")
		default:
			if _, err := c.br.Discard(int(n)); err != nil {
				return err
			}
		}
	}
}
