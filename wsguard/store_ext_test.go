package wsguard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/wsguard"
)

// fakeConns is a ConnStore answering with err, counting releases.
type fakeConns struct {
	err                 error
	client              string
	maxTotal, maxClient int
	released            atomic.Int32
}

func (f *fakeConns) AcquireConn(_ context.Context, client string, maxTotal, maxClient int) (func(), error) {
	f.client, f.maxTotal, f.maxClient = client, maxTotal, maxClient
	if f.err != nil {
		return nil, f.err
	}
	return func() { f.released.Add(1) }, nil
}

type fakeRate struct {
	wait time.Duration
	err  error
}

func (f *fakeRate) AllowHandshake(context.Context, string, float64, int) (time.Duration, error) {
	return f.wait, f.err
}

func TestSharedStores(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		conns      *fakeConns
		rate       *fakeRate
		wantStatus int
		wantRetry  string
	}{
		{"admitted", &fakeConns{}, &fakeRate{}, http.StatusSwitchingProtocols, ""},
		{"client cap", &fakeConns{err: fmt.Errorf("x: %w", wsguard.ErrClientCap)}, nil, http.StatusTooManyRequests, "1"},
		{"total cap", &fakeConns{err: wsguard.ErrTotalCap}, nil, http.StatusServiceUnavailable, "1"},
		{"conn store error", &fakeConns{err: errors.New("down")}, nil, http.StatusServiceUnavailable, ""},
		{"rate", nil, &fakeRate{wait: 2500 * time.Millisecond}, http.StatusTooManyRequests, "3"},
		{"rate store error", nil, &fakeRate{err: errors.New("down")}, http.StatusServiceUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []wsguard.Option{wsguard.WithMaxConns(7, 3)}
			if tt.conns != nil {
				opts = append(opts, wsguard.WithConnStore(tt.conns))
			}
			if tt.rate != nil {
				opts = append(opts, wsguard.WithHandshakeStore(tt.rate))
			}
			ts := start(t, echo, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, ts.URL, nil)
			if tt.wantStatus == http.StatusSwitchingProtocols {
				if err != nil {
					t.Fatal(err)
				}
				roundTrip(t, c, "x")
				c.Close(websocket.StatusNormalClosure, "")
				closeLine(t, ts.Logs)
				if tt.conns.released.Load() != 1 {
					t.Errorf("released %d times", tt.conns.released.Load())
				}
				if tt.conns.client != "127.0.0.1" || tt.conns.maxTotal != 7 || tt.conns.maxClient != 3 {
					t.Errorf("store asked for %q, %d, %d", tt.conns.client, tt.conns.maxTotal, tt.conns.maxClient)
				}
				return
			}
			if err == nil || resp.StatusCode != tt.wantStatus {
				t.Fatalf("handshake: %v, %v; want %d", resp, err, tt.wantStatus)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetry)
			}
		})
	}
}
