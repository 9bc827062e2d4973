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
// add to a bare upgrade. As there, each variant's run is interleaved, in
// rounds, with the bare upgrade over the same number of handshakes:
// x-coder is the variant's handshakes/s over the reference's, and
// us-added/op the server time a handshake takes over the bare upgrade's.
// Both leave out net/http and the kernel, so x-coder is far lower here
// than in a real storm; us-added/op is the cost itself. The serving
// goroutine's stack is the benchmark's, already grown: what growing a
// fresh one costs is in BenchmarkHandshake only.
func BenchmarkServeHandshake(b *testing.B) {
	ref := newMemServer(b, bench.HandshakeVariants()[0])
	for _, v := range bench.HandshakeVariants() {
		b.Run(v.Name, func(b *testing.B) {
			srv := newMemServer(b, v)
			b.ReportAllocs()
			b.ResetTimer()
			refTime, varTime := interleave(b, b.N >= 1000, func(n int) time.Duration { return ref.serve(b, n) },
				func(n int) time.Duration { return srv.serve(b, n) })
			b.StopTimer()
			b.ReportMetric(refTime.Seconds()/varTime.Seconds(), "x-coder")
			b.ReportMetric((varTime-refTime).Seconds()*1e6/float64(b.N), "us-added/op")
		})
	}
}

// memServer is a handshake variant's handler with the upgrade requests of
// its clients, one per known token.
type memServer struct {
	h    http.Handler
	reqs []*http.Request
}

func newMemServer(b testing.TB, v bench.HandshakeVariant) *memServer {
	var headers []http.Header
	if v.Headers != nil {
		headers = v.Headers()
	}
	u := &url.URL{Host: "bench.test", Path: "/"}
	s := &memServer{h: v.Handler(), reqs: make([]*http.Request, max(1, len(headers)))}
	for i := range s.reqs {
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
		s.reqs[i] = r
	}
	// Warm up, and fill the verified-token cache.
	s.serve(b, 2*len(s.reqs))
	return s
}

// serve serves n handshakes, cycling through the requests, and returns the
// time taken.
func (s *memServer) serve(b testing.TB, n int) time.Duration {
	start := time.Now()
	for i := range n {
		serveOnce(b, s.h, s.reqs[i%len(s.reqs)])
	}
	return time.Since(start)
}

func serveOnce(b testing.TB, h http.Handler, r *http.Request) {
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

// TestServeHandshakeAllocations holds what each variant allocates for a
// handshake over the bare upgrade, on BenchmarkServeHandshake's in-memory
// connections: the guards' request context, connection, its context,
// limiter, keepalive timer and socket wrapper, and the way it ends; with
// a token, the session, the subject's context, the request copy and the
// expiry timer, and a full verification's claims, header and decoded
// parts. AllocsPerRun cannot run in parallel.
func TestServeHandshakeAllocations(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector changes what allocates")
	}
	budget := map[string]float64{
		"guard": 16, "HS256": 24, "HS256-cached": 21, "ES256-cached": 21, "EdDSA-cached": 21,
	}
	vs := bench.HandshakeVariants()
	ref := newMemServer(t, vs[0])
	bare := testing.AllocsPerRun(200, func() { ref.serve(t, 1) })
	for _, v := range vs {
		max, ok := budget[v.Name]
		if !ok {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			srv := newMemServer(t, v)
			added := testing.AllocsPerRun(200, func() { srv.serve(t, 1) }) - bare
			if added > max {
				t.Errorf("%v allocations over the bare upgrade's %v, want at most %v", added, bare, max)
			}
		})
	}
}
