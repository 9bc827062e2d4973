package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/wsguard/kit/internal/wstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type running struct {
	url     string
	metrics string // with -metrics-addr
	client  string // the client command printed
	stop    context.CancelFunc
	done    chan error
}

// startEcho runs the example as main does, on a free port, and returns its
// URL once it is listening.
func startEcho(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	r := &running{stop: stop, done: done}
	for r.url == "" || r.client == "" {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("server did not start: %v", err)
		}
		line = strings.TrimSpace(line)
		if u, ok := strings.CutPrefix(line, "echo: metrics at "); ok {
			r.metrics = u
		}
		if u, ok := strings.CutPrefix(line, "echo: listening on "); ok {
			r.url = u
		}
		if cmd, ok := strings.CutPrefix(line, "echo: try it from the repository root (type lines, Ctrl-D to quit): "); ok {
			r.client = cmd
		}
	}
	go io.Copy(io.Discard, br)
	t.Cleanup(func() {
		stop()
		<-done
	})
	return r
}

func TestEchoServer(t *testing.T) {
	t.Parallel()
	logFile := filepath.Join(t.TempDir(), "echo.log")
	srv := startEcho(t, "-log-file", logFile, "-rate", "2", "-burst", "4", "-read-limit", "1024", "-max-conns-per-ip", "5")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, _, err := websocket.Dial(ctx, srv.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "Server received: hello" {
		t.Fatalf("reply %q, %v", b, err)
	}

	for _, tc := range wstest.Abuses(1024) {
		raw := wstest.DialRaw(t, srv.url, nil)
		if err := tc.Send(raw); err != nil {
			t.Fatal(err)
		}
		if status, _, err := raw.ReadClose(10 * time.Second); err != nil || status != tc.Status {
			t.Fatalf("%s: close %d (%v), want %d", tc.Name, status, err, tc.Status)
		}
	}

	raw := wstest.DialRaw(t, srv.url, http.Header{"Origin": {"https://evil.example"}})
	if raw.Response.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin handshake: %d", raw.Response.StatusCode)
	}

	// The log file has the rejections, with digests of payloads that
	// caused them and never the payloads.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		if strings.Count(string(b), `"connection closed"`) >= 4 || time.Now().After(deadline) {
			if strings.Contains(string(b), "hello") {
				t.Fatal("log contains a payload")
			}
			var sawDigest bool
			for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if m["code"] == "invalid_payload" && m["payload_sha256"] != nil {
					sawDigest = true
				}
			}
			if !sawDigest {
				t.Fatalf("no payload digest on the UTF-8 rejection:\n%s", b)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPerIPCap(t *testing.T) {
	t.Parallel()
	srv := startEcho(t, "-max-conns-per-ip", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		c, _, err := websocket.Dial(ctx, srv.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
	}
	raw := wstest.DialRaw(t, srv.url, nil)
	if raw.Response.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %d, want 429", raw.Response.StatusCode)
	}
}

func TestIdleClientClosed(t *testing.T) {
	t.Parallel()
	srv := startEcho(t, "-idle-timeout", "200ms", "-ping-interval", "50ms")
	raw := wstest.DialRaw(t, srv.url, nil)
	if status, _, err := raw.ReadClose(5 * time.Second); err != nil || status != 1001 {
		t.Fatalf("close %d (%v), want 1001", status, err)
	}
}

func TestNoCompression(t *testing.T) {
	t.Parallel()
	srv := startEcho(t)
	raw := wstest.DialRaw(t, srv.url, http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate"}})
	if ext := raw.Response.Header.Get("Sec-WebSocket-Extensions"); raw.Response.StatusCode != 101 || ext != "" {
		t.Fatalf("status %d, extensions %q", raw.Response.StatusCode, ext)
	}
}

// TestSignalDrains is what SIGTERM does: every open connection gets 1001
// and run returns nil within the shutdown timeout.
func TestSignalDrains(t *testing.T) {
	t.Parallel()
	srv := startEcho(t, "-shutdown-timeout", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	statuses := make(chan websocket.StatusCode, 3)
	for range 3 {
		c, _, err := websocket.Dial(ctx, srv.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_, _, err := c.Read(ctx)
			statuses <- websocket.CloseStatus(err)
		})
	}
	start := time.Now()
	srv.stop()
	if err := <-srv.done; err != nil {
		t.Fatalf("run returned %v, want nil (exit 0)", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("drain took %v, over the shutdown timeout", d)
	}
	srv.done <- nil // for Cleanup
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != websocket.StatusGoingAway {
			t.Fatalf("close %v, want 1001", s)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	srv := startEcho(t, "-metrics-addr", "127.0.0.1:0", "-rate", "1", "-burst", "2")
	raw := wstest.DialRaw(t, srv.url, nil)
	for range 5 {
		if err := raw.WriteFrame(true, wstest.OpText, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if status, _, err := raw.ReadClose(5 * time.Second); err != nil || status != 4429 {
		t.Fatalf("close %d (%v), want 4429", status, err)
	}
	want := []string{
		`wsguard_connections_closed_total{code="resource_exhausted",status="4429"} 1`,
		`wsguard_limited_total{limit="message_rate"} 1`,
		`wsguard_connections_open 0`,
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(srv.metrics)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(string(b), w) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack some of %q:\n%s", want, b)
		}
	}
}

// TestRefusedClientsHoldNoSockets is the keep-alive flood: many
// connections from one client IP, each refused once (over the per-IP cap,
// or with a 512 KiB header), are all closed by the server at once instead
// of staying open beside the one connection the cap allows.
func TestRefusedClientsHoldNoSockets(t *testing.T) {
	t.Parallel()
	srv := startEcho(t, "-max-conns-per-ip", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	held, _, err := websocket.Dial(ctx, srv.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.CloseNow()
	u, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
	}{
		{"over the per-IP cap", nil, http.StatusTooManyRequests},
		{"512 KiB header", http.Header{"Sec-Websocket-Key": {strings.Repeat("A", 512<<10)}}, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					defer nc.Close()
					_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
					req := wstest.UpgradeRequest(u, tc.header)
					// The server stops reading a header block at its
					// bound: write the rest in the background.
					written := make(chan struct{})
					go func() {
						defer close(written)
						_ = req.Write(nc)
					}()
					defer func() { nc.Close(); <-written }()
					br := bufio.NewReader(nc)
					resp, err := http.ReadResponse(br, req)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != tc.status {
						t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
						return
					}
					_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
					if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
						t.Errorf("after a %d the connection is still open: %v", tc.status, err)
					}
				})
			}
			wg.Wait()
		})
	}
}
