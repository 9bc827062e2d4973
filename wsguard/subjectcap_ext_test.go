package wsguard_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

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
