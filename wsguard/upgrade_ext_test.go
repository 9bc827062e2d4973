package wsguard_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// statusRecorder is middleware's usual ResponseWriter wrapper: it records
// the status and reaches the hijacker through Unwrap.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// The 101 response carries the upgrade's headers and those middleware set
// before it, sanitized as net/http sanitizes them, whether net/http or the
// server writes it; middleware that wraps the ResponseWriter sees the 101.
func TestSwitchingProtocolsResponse(t *testing.T) {
	t.Parallel()
	for _, wrapped := range []bool{false, true} {
		name := "net/http's writer"
		if wrapped {
			name = "a middleware's writer"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := wsguard.New(echo, wsguard.WithSubprotocols("chat"))
			seen := make(chan int, 1)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Frame-Options", "DENY")
				w.Header()["X-Injected"] = []string{"a\r\nSet-Cookie: stolen=1"}
				if !wrapped {
					srv.ServeHTTP(w, r)
					return
				}
				rec := &statusRecorder{ResponseWriter: w}
				srv.ServeHTTP(rec, r)
				seen <- rec.status
			}))
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
				ts.Close()
			})
			raw := wstest.DialRaw(t, "ws"+strings.TrimPrefix(ts.URL, "http"), http.Header{"Sec-WebSocket-Protocol": {"chat"}})
			h := raw.Response.Header
			if raw.Response.StatusCode != http.StatusSwitchingProtocols || h.Get("Upgrade") != "websocket" ||
				h.Get("Connection") != "Upgrade" || h.Get("Sec-WebSocket-Accept") == "" || h.Get("Sec-WebSocket-Protocol") != "chat" {
				t.Fatalf("response %d %v", raw.Response.StatusCode, h)
			}
			if h.Get("X-Frame-Options") != "DENY" || h.Get("Set-Cookie") != "" || !strings.HasPrefix(h.Get("X-Injected"), "a ") {
				t.Errorf("middleware's headers: %v", h)
			}
			if err := raw.WriteFrame(true, wstest.OpText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			f, err := raw.ReadFrame(5 * time.Second)
			if err != nil || !bytes.Equal(f.Payload, []byte("Server received: hi")) {
				t.Fatalf("echo %q, %v", f.Payload, err)
			}
			_ = raw.WriteFrame(true, wstest.OpClose, []byte{0x03, 0xe8})
			if wrapped {
				if status := <-seen; status != http.StatusSwitchingProtocols {
					t.Errorf("the middleware saw status %d", status)
				}
			}
		})
	}
}
