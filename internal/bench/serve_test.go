package bench_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/wsguard/kit/internal/bench"
	"github.com/wsguard/kit/internal/wstest"
)

// BenchmarkServeHandshake measures the server's side of a handshake alone:
// each variant's handler serves an upgrade request on an in-memory
// connection whose client is gone once the 101 response is written, so
// no network, kernel or client time is in ns/op and allocs/op. It is the
// same work as one handshake of BenchmarkHandshake minus net/http's
// request parsing, and the place to see what the guards and the session
// add to a bare upgrade.
func BenchmarkServeHandshake(b *testing.B) {
	for _, v := range bench.HandshakeVariants() {
		b.Run(v.Name, func(b *testing.B) {
			h := v.Handler()
			var headers []http.Header
			if v.Headers != nil {
				headers = v.Headers()
			}
			u := &url.URL{Host: "bench.test", Path: "/"}
			reqs := make([]*http.Request, max(1, len(headers)))
			for i := range reqs {
				var hd http.Header
				if len(headers) > 0 {
					hd = headers[i]
				}
				r := wstest.UpgradeRequest(u, hd)
				// As net/http's parser hands it over: canonical keys.
				canon := make(http.Header, len(r.Header))
				for k, vs := range r.Header {
					canon[http.CanonicalHeaderKey(k)] = vs
				}
				r.Header, r.RemoteAddr = canon, "192.0.2.1:1234"
				reqs[i] = r
			}
			// Warm up, and fill the verified-token cache.
			for i := range 2 * len(reqs) {
				serveOnce(b, h, reqs[i%len(reqs)])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				serveOnce(b, h, reqs[i%len(reqs)])
			}
		})
	}
}

func serveOnce(b *testing.B, h http.Handler, r *http.Request) {
	w := &memResponse{header: make(http.Header)}
	h.ServeHTTP(w, r)
	if w.code != http.StatusSwitchingProtocols {
		b.Fatalf("status %d, want 101", w.code)
	}
}

// memResponse is a hijackable ResponseWriter over a memConn.
type memResponse struct {
	header http.Header
	code   int
}

func (w *memResponse) Header() http.Header         { return w.header }
func (w *memResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *memResponse) WriteHeader(code int)        { w.code = code }

// Hijack returns a connection whose peer has gone, with buffers of the
// sizes net/http hands over.
func (w *memResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := memConn{}
	return c, bufio.NewReadWriter(bufio.NewReaderSize(c, 4096), bufio.NewWriterSize(c, 4096)), nil
}

// memConn reads end of file and swallows writes.
type memConn struct{}

var memAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234}

func (memConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (memConn) Close() error                     { return nil }
func (memConn) LocalAddr() net.Addr              { return memAddr }
func (memConn) RemoteAddr() net.Addr             { return memAddr }
func (memConn) SetDeadline(time.Time) error      { return nil }
func (memConn) SetReadDeadline(time.Time) error  { return nil }
func (memConn) SetWriteDeadline(time.Time) error { return nil }
