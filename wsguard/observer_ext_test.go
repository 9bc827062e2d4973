package wsguard_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// recorder keeps the events it observes.
type recorder struct {
	mu     sync.Mutex
	events []wsguard.Event
}

func (r *recorder) Observe(_ context.Context, e wsguard.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) kinds() []wsguard.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	ks := make([]wsguard.EventKind, len(r.events))
	for i, e := range r.events {
		ks[i] = e.Kind
	}
	return ks
}

func (r *recorder) find(k wsguard.EventKind) []wsguard.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wsguard.Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// wait waits until n events have been observed.
func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if len(r.kinds()) >= n {
			return
		}
	}
	t.Fatalf("want %d events, got %v", n, r.kinds())
}

func TestObserverEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   []wsguard.Option
		script func(t *testing.T, url string)
		want   []wsguard.EventKind // in order, unless unordered
		// The first connection's end races the second handshake.
		unordered bool
		check     func(t *testing.T, r *recorder)
	}{
		{
			name: "echo and close",
			script: func(t *testing.T, url string) {
				c := dial(t, url, nil)
				roundTrip(t, c, "hello")
				c.Close(websocket.StatusNormalClosure, "")
			},
			want: []wsguard.EventKind{wsguard.EventHandshakeAccepted, wsguard.EventConnOpened,
				wsguard.EventMessageOut, wsguard.EventMessageIn, wsguard.EventConnClosed},
			check: func(t *testing.T, r *recorder) {
				in := r.find(wsguard.EventMessageIn)[0]
				if in.Size != len("hello") || in.Duration <= 0 || in.Conn == nil {
					t.Errorf("message in: %+v", in)
				}
				if out := r.find(wsguard.EventMessageOut)[0]; out.Size != len("Server received: hello") {
					t.Errorf("message out: %+v", out)
				}
				if cl := r.find(wsguard.EventConnClosed)[0]; cl.Status != 1000 || cl.Duration <= 0 {
					t.Errorf("closed: %+v", cl)
				}
			},
		},
		{
			name: "message rate",
			opts: []wsguard.Option{wsguard.WithMessageRate(1, 1)},
			script: func(t *testing.T, url string) {
				c := dial(t, url, nil)
				roundTrip(t, c, "a")
				_ = c.Write(context.Background(), websocket.MessageText, []byte("b"))
				_, _, _ = c.Read(context.Background())
			},
			want: []wsguard.EventKind{wsguard.EventHandshakeAccepted, wsguard.EventConnOpened,
				wsguard.EventMessageOut, wsguard.EventMessageIn, wsguard.EventLimited, wsguard.EventConnClosed},
			check: func(t *testing.T, r *recorder) {
				if l := r.find(wsguard.EventLimited)[0]; l.Reason != wsguard.LimitMessageRate || l.Conn == nil {
					t.Errorf("limited: %+v", l)
				}
				if cl := r.find(wsguard.EventConnClosed)[0]; cl.Code != errlog.ResourceExhausted || cl.Status != errlog.CloseResourceExhausted {
					t.Errorf("closed: %+v", cl)
				}
			},
		},
		{
			name: "handshake rate",
			opts: []wsguard.Option{wsguard.WithHandshakeRate(0.001, 1)},
			script: func(t *testing.T, url string) {
				dial(t, url, nil).Close(websocket.StatusNormalClosure, "")
				if _, resp, err := websocket.Dial(context.Background(), url, nil); err == nil || resp.StatusCode != http.StatusTooManyRequests {
					t.Errorf("second handshake: %v, %v", resp, err)
				}
			},
			want: []wsguard.EventKind{wsguard.EventHandshakeAccepted, wsguard.EventConnOpened,
				wsguard.EventConnClosed, wsguard.EventLimited, wsguard.EventHandshakeRejected},
			unordered: true,
			check: func(t *testing.T, r *recorder) {
				if l := r.find(wsguard.EventLimited)[0]; l.Reason != wsguard.LimitHandshakeRate || l.Request == nil {
					t.Errorf("limited: %+v", l)
				}
				if rj := r.find(wsguard.EventHandshakeRejected)[0]; rj.Code != errlog.ResourceExhausted || rj.Status != http.StatusTooManyRequests {
					t.Errorf("rejected: %+v", rj)
				}
			},
		},
		{
			name: "auth middleware rejects",
			opts: []wsguard.Option{wsguard.WithHandshake(func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					wsguard.Reject(w, r, slog.New(slog.DiscardHandler), errlog.NewError(errlog.Unauthenticated, nil))
				})
			})},
			script: func(t *testing.T, url string) {
				if _, resp, err := websocket.Dial(context.Background(), url, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("handshake: %v, %v", resp, err)
				}
			},
			want: []wsguard.EventKind{wsguard.EventHandshakeRejected, wsguard.EventAuthFailed},
			check: func(t *testing.T, r *recorder) {
				if a := r.find(wsguard.EventAuthFailed)[0]; a.Reason != "invalid token" {
					t.Errorf("auth failed: %+v", a)
				}
			},
		},
		{
			name: "closed with 4401 after the upgrade",
			opts: []wsguard.Option{wsguard.WithConnect(func(context.Context, *wsguard.Conn) error {
				return errlog.NewError(errlog.Unauthenticated, nil)
			})},
			script: func(t *testing.T, url string) {
				c := dial(t, url, nil)
				_, _, err := c.Read(context.Background())
				if websocket.CloseStatus(err) != errlog.CloseUnauthenticated {
					t.Errorf("read: %v", err)
				}
			},
			want: []wsguard.EventKind{wsguard.EventHandshakeAccepted, wsguard.EventConnOpened,
				wsguard.EventConnClosed, wsguard.EventAuthFailed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{}
			ts := start(t, echo, append(tt.opts, wsguard.WithObserver(r))...)
			tt.script(t, ts.URL)
			r.wait(t, len(tt.want))
			got, want := r.kinds(), tt.want
			if tt.unordered {
				got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
			}
			if !slices.Equal(got, want) {
				t.Errorf("events %v, want %v", got, want)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestObservers(t *testing.T) {
	t.Parallel()
	if wsguard.Observers() != nil || wsguard.Observers(nil, nil) != nil {
		t.Error("Observers of none is not nil")
	}
	var a, b recorder
	o := wsguard.Observers(&a, nil, wsguard.Observers(&b))
	o.Observe(context.Background(), wsguard.Event{Kind: wsguard.EventConnOpened})
	if len(a.kinds()) != 1 || len(b.kinds()) != 1 {
		t.Errorf("events: %v, %v", a.kinds(), b.kinds())
	}
}

func TestLogObserver(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	l := errlog.NewLogger(lockedWriter{&mu, &buf}, slog.LevelDebug)
	ts := start(t, echo, wsguard.WithObserver(wsguard.LogObserver(l, slog.LevelDebug)))
	c := dial(t, ts.URL, nil)
	roundTrip(t, c, "hi")
	c.Close(websocket.StatusNormalClosure, "")
	closeLine(t, ts.Logs)
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	for _, want := range []string{`"event":"handshake_accepted"`, `"event":"message_in"`, `"size":2`, `"event":"conn_closed"`, `"conn":"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
