package wsguard_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// httpConn is a client's keep-alive HTTP/1.1 connection, driven by hand.
type httpConn struct {
	nc net.Conn
	br *bufio.Reader
}

func dialHTTP(t *testing.T, addr string) *httpConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &httpConn{nc: nc, br: bufio.NewReader(nc)}
}

// do writes req and reads its whole response.
func (c *httpConn) do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	_ = c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := req.Write(c.nc); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// closedWithin reports how long the server took to close the connection,
// failing the test when it is still open after d or sends anything.
func (c *httpConn) closedWithin(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.nc.SetReadDeadline(start.Add(d))
	n, err := c.br.Read(make([]byte, 1))
	switch {
	case n > 0:
		t.Fatalf("server sent more on the connection")
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("connection still open after %v", d)
	case !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("read: %v, want EOF", err)
	}
	return time.Since(start)
}

func upgradeRequest(t *testing.T, rawURL string, header http.Header) *http.Request {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return wstest.UpgradeRequest(u, header)
}

func echoHandler() wsguard.Handler {
	return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, m.Type, m.Data)
	})
}

// TestRefusedHandshakeClosesConnection: every refused handshake closes its
// keep-alive connection, so that refused clients cannot pile up open
// sockets beside the ones the caps count.
func TestRefusedHandshakeClosesConnection(t *testing.T) {
	t.Parallel()
	const n = 8
	deny, err := wsguard.NewIPFilter(nil, []string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		opts   []wsguard.Option
		header http.Header
		hold   bool // keep one connection open first, taking the client's slot
		drain  bool // shut the server down first
		status int
	}{
		{"over the per-IP cap", []wsguard.Option{wsguard.WithMaxConns(100, 1)}, nil, true, false, http.StatusTooManyRequests},
		{"foreign origin", nil, http.Header{"Origin": {"https://evil.example"}}, false, false, http.StatusForbidden},
		{"denied IP", []wsguard.Option{wsguard.WithIPFilter(deny)}, nil, false, false, http.StatusForbidden},
		{"over the handshake rate", []wsguard.Option{wsguard.WithHandshakeRate(0.001, 1)}, nil, true, false, http.StatusTooManyRequests},
		{"draining", nil, nil, false, true, http.StatusServiceUnavailable},
		{"refused by handshake middleware", []wsguard.Option{wsguard.WithHandshake(func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				wsguard.Reject(w, r, slog.New(slog.DiscardHandler), errlog.NewError(errlog.Unauthenticated, nil))
			})
		})}, nil, false, false, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws := wsguard.New(echoHandler(), append(tc.opts, wsguard.WithLogger(slog.New(slog.DiscardHandler)))...)
			ts := httptest.NewServer(ws)
			defer ts.Close()
			defer ws.Shutdown(context.Background())
			wsURL := "ws" + strings.TrimPrefix(ts.URL, "http")
			if tc.hold {
				c, _, err := websocket.Dial(context.Background(), wsURL, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
			}
			if tc.drain {
				if err := ws.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			conns := make([]*httpConn, n)
			for i := range conns {
				conns[i] = dialHTTP(t, ts.Listener.Addr().String())
				resp := conns[i].do(t, upgradeRequest(t, wsURL, tc.header))
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if !resp.Close {
					t.Errorf("response without Connection: close")
				}
			}
			for _, c := range conns {
				c.closedWithin(t, 2*time.Second)
			}
		})
	}
}

// TestRejectKeepsHTTP2StreamsAlone: on HTTP/2 a refusal ends its stream
// only, and Connection (a connection-specific header HTTP/2 forbids) is
// not set.
func TestRejectKeepsHTTP2StreamsAlone(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	wsguard.Reject(rec, r, slog.New(slog.DiscardHandler), errlog.NewError(errlog.ResourceExhausted, nil))
	if got := rec.Header().Get("Connection"); rec.Code != http.StatusTooManyRequests || got != "" {
		t.Fatalf("status %d, Connection %q", rec.Code, got)
	}
}

// serveTest runs Serve on a free port until the test ends, and returns
// its address and a function that stops it and returns Serve's result.
func serveTest(t *testing.T, h http.Handler, opts ...wsguard.ServeOption) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wsguard.Serve(ctx, ln, h, opts...) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			result = <-done
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return ln.Addr().String(), stop
}

// TestServeBoundsIdleConnections: a connection that sends no request is
// closed after the header timeout, and a kept-alive one after the
// keep-alive timeout, whatever the connection caps say.
func TestServeBoundsIdleConnections(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	ws := wsguard.New(echoHandler(), wsguard.WithLogger(slog.New(slog.DiscardHandler)))
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.Handle("/ws", ws)
	addr, _ := serveTest(t, mux, wsguard.WithDrain(ws), wsguard.WithHTTPServer(func(hs *http.Server) {
		hs.ReadHeaderTimeout = timeout
		hs.IdleTimeout = timeout
	}))
	for _, tc := range []struct {
		name    string
		path    string // "": no request
		refused bool   // a refusal, which may close the connection at once
	}{
		{"no request at all", "", false},
		{"kept alive after a request", "/ok", false},
		// A refusal closes its connection at once.
		{"after a plain GET of the socket", "/ws", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialHTTP(t, addr)
			if tc.path != "" {
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+tc.path, nil)
				resp := c.do(t, req)
				switch {
				case tc.refused && (resp.StatusCode != http.StatusBadRequest || !resp.Close):
					t.Fatalf("status %d, close %v: want 400 and Connection: close", resp.StatusCode, resp.Close)
				case !tc.refused && (resp.StatusCode != http.StatusOK || resp.Close):
					t.Fatalf("status %d, close %v: want a kept-alive 200", resp.StatusCode, resp.Close)
				}
			}
			if d := c.closedWithin(t, 10*timeout); d < timeout/2 && !tc.refused {
				t.Fatalf("closed after %v, before the %v timeout", d, timeout)
			}
		})
	}
}

// TestServeRefusesHugeHeaders: a 512 KiB header is refused with 431 and
// its connection closed, long before net/http's own 1 MiB bound.
func TestServeRefusesHugeHeaders(t *testing.T) {
	t.Parallel()
	logs := &wstest.Logs{}
	ws := wsguard.New(echoHandler(), wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	addr, _ := serveTest(t, ws)
	for _, tc := range []struct {
		name   string
		header string
	}{
		{"Sec-WebSocket-Key", "Sec-WebSocket-Key"},
		{"cookie", "Cookie"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialHTTP(t, addr)
			req := upgradeRequest(t, "ws://"+addr+"/", http.Header{tc.header: {strings.Repeat("A", 512<<10)}})
			// The server stops reading at its bound, so the rest of the
			// request is written in the background; closing the
			// connection ends the write.
			written := make(chan struct{})
			go func() {
				defer close(written)
				_ = req.Write(c.nc)
			}()
			defer func() { c.nc.Close(); <-written }()
			_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(c.br, req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("status %d, want 431", resp.StatusCode)
			}
			c.closedWithin(t, 2*time.Second)
		})
	}
	if ws.Open() != 0 || len(logs.Find(t, "connection opened")) != 0 {
		t.Fatal("a refused request reached the WebSocket server")
	}
}

func TestNewHTTPServerDefaults(t *testing.T) {
	t.Parallel()
	h := http.NewServeMux()
	for _, tc := range []struct {
		name                                     string
		opts                                     []wsguard.ServeOption
		readHeader, read, write, idle, maxHeader any
	}{
		{"defaults", nil, 10 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second, 32 << 10},
		{"changed", []wsguard.ServeOption{wsguard.WithHTTPServer(func(hs *http.Server) {
			hs.WriteTimeout, hs.IdleTimeout = 0, time.Second
		})}, 10 * time.Second, 30 * time.Second, time.Duration(0), time.Second, 32 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs := wsguard.NewHTTPServer(h, tc.opts...)
			got := []any{hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout, hs.MaxHeaderBytes}
			want := []any{tc.readHeader, tc.read, tc.write, tc.idle, tc.maxHeader}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("(ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout, MaxHeaderBytes) = %v, want %v", got, want)
				}
			}
			if hs.Handler != h || hs.ErrorLog == nil {
				t.Fatal("handler or error log not set")
			}
		})
	}
}

// TestHTTPServerErrorLog: net/http's own error lines go to the logger of
// the WebSocket server, one escaped line each, a panic at error level.
func TestHTTPServerErrorLog(t *testing.T) {
	t.Parallel()
	logs := &wstest.Logs{}
	ws := wsguard.New(echoHandler(), wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	mux := http.NewServeMux()
	mux.Handle("/", ws)
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("boom\n{\"level\":\"ERROR\"}") })
	addr, _ := serveTest(t, mux, wsguard.WithDrain(ws))
	resp, err := http.Get("http://" + addr + "/panic")
	if err == nil {
		resp.Body.Close()
	}
	lines := logs.WaitFor(t, "http server error", 5*time.Second)
	if len(lines) != 1 || lines[0]["level"] != "ERROR" {
		t.Fatalf("lines %v", lines)
	}
	text := lines[0][errlog.KeyErr].(string)
	if !strings.Contains(text, `panic serving`) || !strings.Contains(text, `boom\n{"level":"ERROR"}`) || strings.Contains(text, "\n") {
		t.Fatalf("err %q", text)
	}

	// Direct use of the error log: one line, escaped, at warn level.
	var direct wstest.Logs
	hs := wsguard.NewHTTPServer(http.NotFoundHandler(), wsguard.WithServeLogger(errlog.NewLogger(&direct, slog.LevelDebug)))
	hs.ErrorLog.Printf("http: Accept error: %s", "bad\x00\xff")
	if got := direct.Find(t, "http server error"); len(got) != 1 || got[0]["level"] != "WARN" || got[0][errlog.KeyErr] != `http: Accept error: bad\x00\xff` {
		t.Fatalf("lines %v", got)
	}
}

// TestServeDrainsBeforeReturning: when ctx ends, the listener closes,
// every WebSocket gets 1001 and Serve returns only once all of them have
// closed, so a process exiting on its return does not cut the drain.
func TestServeDrainsBeforeReturning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		mux   bool // the WebSocket server behind a mux, named by WithDrain
		conns int
	}{
		{"server as the handler", false, 3},
		{"server behind a mux", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws := wsguard.New(echoHandler(), wsguard.WithLogger(slog.New(slog.DiscardHandler)))
			var h http.Handler = ws
			var opts []wsguard.ServeOption
			path := "/"
			if tc.mux {
				mux := http.NewServeMux()
				mux.Handle("/ws", ws)
				h, opts, path = mux, []wsguard.ServeOption{wsguard.WithDrain(ws)}, "/ws"
			}
			addr, stop := serveTest(t, h, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			statuses := make(chan websocket.StatusCode, tc.conns)
			var readers sync.WaitGroup
			for range tc.conns {
				c, _, err := websocket.Dial(ctx, "ws://"+addr+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				readers.Go(func() {
					_, _, err := c.Read(ctx)
					statuses <- websocket.CloseStatus(err)
				})
			}
			for ws.Open() != tc.conns {
				time.Sleep(5 * time.Millisecond)
			}
			if err := stop(); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if n := ws.Open(); n != 0 {
				t.Fatalf("Serve returned with %d connections still open", n)
			}
			if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				nc.Close()
				t.Fatal("the listener still accepts after Serve returned")
			}
			readers.Wait()
			close(statuses)
			for s := range statuses {
				if s != websocket.StatusGoingAway {
					t.Fatalf("close %v, want 1001", s)
				}
			}
		})
	}
}

// TestServeShutdownTimeout: a client that never answers the close is
// dropped when the shutdown timeout ends, and Serve says so in the log.
func TestServeShutdownTimeout(t *testing.T) {
	t.Parallel()
	logs := &wstest.Logs{}
	ws := wsguard.New(echoHandler(), wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	addr, stop := serveTest(t, ws, wsguard.WithShutdownTimeout(300*time.Millisecond))
	raw := wstest.DialRaw(t, "ws://"+addr+"/", nil)
	if raw.Response.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", raw.Response.StatusCode)
	}
	for ws.Open() != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v with a 300ms timeout", d)
	}
	if ws.Open() != 0 || len(logs.Find(t, "dropped WebSocket connections that did not close in time")) != 1 {
		t.Fatalf("open %d, logs:\n%s", ws.Open(), logs.String())
	}
}

// TestListenAndServe: the address form listens itself, and fails as
// net.Listen does.
func TestListenAndServe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = wsguard.ListenAndServe(context.Background(), ln.Addr().String(), http.NotFoundHandler())
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("ListenAndServe on a taken port: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := wsguard.ListenAndServe(ctx, "127.0.0.1:0", http.NotFoundHandler()); err != nil {
		t.Fatalf("ListenAndServe with an ended ctx: %v", err)
	}
}
