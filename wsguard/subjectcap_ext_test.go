package wsguard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// subjectFromHeader stands in for authentication: the subject is the
// X-Sub header.
func subjectFromHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sub := r.Header.Get("X-Sub"); sub != "" {
			r = r.WithContext(wsguard.WithSubject(r.Context(), sub))
		}
		next.ServeHTTP(w, r)
	})
}

func dialSub(t *testing.T, url, sub string) (*websocket.Conn, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if sub != "" {
		h.Set("X-Sub", sub)
	}
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp == nil {
			t.Fatal(err)
		}
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, http.StatusSwitchingProtocols
}

func TestSubjectConnLimit(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	lim := wsguard.NewSubjectConnLimit(2, nil)
	ts := start(t, echo, wsguard.WithObserver(rec), wsguard.WithHandshake(subjectFromHeader, lim.Handler))
	a, _ := dialSub(t, ts.URL, "alice")
	dialSub(t, ts.URL, "alice")
	if _, st := dialSub(t, ts.URL, "alice"); st != http.StatusTooManyRequests {
		t.Errorf("third of alice: %d, want 429", st)
	}
	if _, st := dialSub(t, ts.URL, "bob"); st != http.StatusSwitchingProtocols {
		t.Errorf("bob: %d", st)
	}
	for range 3 {
		if _, st := dialSub(t, ts.URL, ""); st != http.StatusSwitchingProtocols {
			t.Errorf("no subject: %d", st)
		}
	}
	if got := rec.find(wsguard.EventLimited); len(got) != 1 || got[0].Reason != wsguard.LimitSubjectConns {
		t.Errorf("limited events: %+v", got)
	}
	a.Close(websocket.StatusNormalClosure, "")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, st := dialSub(t, ts.URL, "alice"); st == http.StatusSwitchingProtocols {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot not freed")
		}
	}
}

func TestSubjectConnLimitStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"admitted", nil, http.StatusSwitchingProtocols},
		{"full", wsguard.ErrClientCap, http.StatusTooManyRequests},
		{"store down, failing closed", errors.New("down"), http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeConns{err: tt.err}
			lim := wsguard.NewSubjectConnLimit(3, st)
			ts := start(t, echo, wsguard.WithHandshake(subjectFromHeader, lim.Handler))
			c, got := dialSub(t, ts.URL, "alice")
			if got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
			if st.client != "alice" || st.maxClient != 3 {
				t.Errorf("store asked for %q, %d", st.client, st.maxClient)
			}
			if c != nil {
				c.Close(websocket.StatusNormalClosure, "")
				closeLine(t, ts.Logs)
				if st.released.Load() != 1 {
					t.Errorf("released %d times", st.released.Load())
				}
			}
		})
	}
}

// late stands in for authentication after the upgrade: a message "as:sub"
// sets the connection's subject, as first-message authentication does.
var late = wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	if sub, ok := strings.CutPrefix(string(m.Data), "as:"); ok {
		c.SetSubject(sub)
	}
	return c.SendText(ctx, "you are "+c.Subject())
})

// becomes dials without a subject (or as the handshake subject hs) and
// sets the subject sub with a message. It returns the connection and the
// reply, or the close status when the server closed instead.
func becomes(t *testing.T, url, hs, sub string) (*websocket.Conn, string, websocket.StatusCode) {
	t.Helper()
	c, st := dialSub(t, url, hs)
	if c == nil {
		t.Fatalf("handshake as %q: %d", hs, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("as:"+sub)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		return c, "", websocket.CloseStatus(err)
	}
	return c, string(b), -1
}

// TestSubjectConnLimitLateSubject checks that a connection whose subject
// is set after the upgrade counts under the cap like one authenticated at
// the handshake.
func TestSubjectConnLimitLateSubject(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	lim := wsguard.NewSubjectConnLimit(1, nil)
	ts := start(t, late, wsguard.WithObserver(rec), wsguard.WithHandshake(subjectFromHeader, lim.Handler))

	a, reply, _ := becomes(t, ts.URL, "", "alice")
	if reply != "you are alice" {
		t.Fatalf("first alice: %q", reply)
	}
	if _, _, st := becomes(t, ts.URL, "", "alice"); st != errlog.CloseResourceExhausted {
		t.Errorf("second alice, after the upgrade: close %d, want 4429", st)
	}
	if _, st := dialSub(t, ts.URL, "alice"); st != http.StatusTooManyRequests {
		t.Errorf("alice at the handshake: %d, want 429", st)
	}
	limited := 0
	for _, e := range rec.find(wsguard.EventLimited) {
		if e.Reason == wsguard.LimitSubjectConns && e.Conn != nil {
			limited++
		}
	}
	if limited != 1 {
		t.Errorf("%d limited events of a connection, want 1: %+v", limited, rec.find(wsguard.EventLimited))
	}

	// The slot follows the subject: bob's is freed when bob becomes carol.
	if _, reply, _ := becomes(t, ts.URL, "bob", "carol"); reply != "you are carol" {
		t.Fatalf("bob as carol: %q", reply)
	}
	if _, st := dialSub(t, ts.URL, "bob"); st != http.StatusSwitchingProtocols {
		t.Errorf("bob after bob became carol: %d", st)
	}
	if _, st := dialSub(t, ts.URL, "carol"); st != http.StatusTooManyRequests {
		t.Errorf("carol at the handshake: %d, want 429", st)
	}

	a.Close(websocket.StatusNormalClosure, "")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, st := dialSub(t, ts.URL, "alice"); st == http.StatusSwitchingProtocols {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("late slot not freed")
		}
	}
}

func TestSubjectConnLimitLateStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want websocket.StatusCode // -1: admitted
	}{
		{"admitted", nil, -1},
		{"full", wsguard.ErrClientCap, errlog.CloseResourceExhausted},
		{"store down, failing closed", errors.New("down"), errlog.CloseTryAgainLater},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeConns{err: tt.err}
			lim := wsguard.NewSubjectConnLimit(3, st)
			ts := start(t, late, wsguard.WithHandshake(lim.Handler))
			c, _, got := becomes(t, ts.URL, "", "alice")
			if got != tt.want {
				t.Fatalf("close %d, want %d", got, tt.want)
			}
			if st.client != "alice" || st.maxClient != 3 {
				t.Errorf("store asked for %q, %d", st.client, st.maxClient)
			}
			c.Close(websocket.StatusNormalClosure, "")
			line := closeLine(t, ts.Logs)
			if line["sub"] != "alice" || line["close"] != float64(tt.want) && tt.want != -1 {
				t.Errorf("closing line %v", line)
			}
			if tt.err == nil && st.released.Load() != 1 {
				t.Errorf("released %d times, want 1", st.released.Load())
			}
		})
	}
}

// TestSubjectConnLimitLateStacked checks that a subject set after the
// upgrade counts under every cap in front of the server, not only the
// innermost.
func TestSubjectConnLimitLateStacked(t *testing.T) {
	t.Parallel()
	for _, tightOutside := range []bool{true, false} {
		t.Run(fmt.Sprintf("tight outside %v", tightOutside), func(t *testing.T) {
			t.Parallel()
			tight, loose := wsguard.NewSubjectConnLimit(1, nil), wsguard.NewSubjectConnLimit(5, nil)
			order := []func(http.Handler) http.Handler{loose.Handler, tight.Handler}
			if tightOutside {
				order[0], order[1] = order[1], order[0]
			}
			ts := start(t, late, wsguard.WithHandshake(order...))
			if _, reply, _ := becomes(t, ts.URL, "", "alice"); reply != "you are alice" {
				t.Fatalf("first alice: %q", reply)
			}
			if _, _, st := becomes(t, ts.URL, "", "alice"); st != errlog.CloseResourceExhausted {
				t.Errorf("second alice: close %d, want 4429", st)
			}
		})
	}
}
