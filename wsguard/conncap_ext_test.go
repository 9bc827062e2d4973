package wsguard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

func TestConnLimitAcquire(t *testing.T) {
	t.Parallel()
	type step struct {
		remote  string
		release int         // >0: release the slot taken at this step number (1-based) instead
		want    errlog.Code // 0: admitted
		open    int         // Open() after the step
	}
	const a, b, c = "198.51.100.1:1", "198.51.100.2:1", "198.51.100.3:1"
	tests := []struct {
		name         string
		total, perIP int
		steps        []step
	}{
		{"per-client cap", 10, 2, []step{
			{a, 0, 0, 1}, {a, 0, 0, 2}, {a, 0, errlog.ResourceExhausted, 2}, {b, 0, 0, 3},
		}},
		{"total cap", 3, 2, []step{
			{a, 0, 0, 1}, {a, 0, 0, 2}, {b, 0, 0, 3}, {c, 0, errlog.Unavailable, 3},
			{"", 1, 0, 2}, {c, 0, 0, 3},
		}},
		{"client over its own cap is told so when the server is full too", 2, 2, []step{
			{a, 0, 0, 1}, {a, 0, 0, 2}, {a, 0, errlog.ResourceExhausted, 2}, {b, 0, errlog.Unavailable, 2},
		}},
		{"release frees the client's slot", 10, 1, []step{
			{a, 0, 0, 1}, {a, 0, errlog.ResourceExhausted, 1}, {"", 1, 0, 0}, {a, 0, 0, 1},
		}},
		{"release twice frees one slot", 10, 5, []step{
			{a, 0, 0, 1}, {a, 0, 0, 2}, {"", 1, 0, 1}, {"", 1, 0, 1},
		}},
		{"IPv6 /64 is one client", 10, 1, []step{
			{"[2001:db8:0:1::1]:1", 0, 0, 1}, {"[2001:db8:0:1::2]:1", 0, errlog.ResourceExhausted, 1},
			{"[2001:db8:0:2::1]:1", 0, 0, 2},
		}},
		{"mapped IPv4 is the same client", 10, 1, []step{
			{a, 0, 0, 1}, {"[::ffff:198.51.100.1]:2", 0, errlog.ResourceExhausted, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := wsguard.NewConnLimit(tt.total, tt.perIP)
			releases := map[int]func(){}
			for i, s := range tt.steps {
				n := i + 1
				if s.release > 0 {
					releases[s.release]()
				} else {
					r := guardRequest(s.remote)
					checkErr := l.Check(r)
					release, err := l.Acquire(r)
					if release == nil {
						t.Fatalf("step %d: nil release", n)
					}
					if errlog.CodeOf(err) != s.want || errlog.CodeOf(checkErr) != s.want {
						t.Fatalf("step %d: Acquire = %v, Check = %v, want code %v", n, err, checkErr, s.want)
					}
					if err != nil {
						if d := wsguard.RetryAfter(err); d != time.Second {
							t.Errorf("step %d: RetryAfter = %v, want 1s", n, d)
						}
						release() // a no-op, safe to defer
					}
					releases[n] = release
				}
				if got := l.Open(); got != s.open {
					t.Fatalf("step %d: Open = %d, want %d", n, got, s.open)
				}
			}
		})
	}
}

func TestConnLimitDefaults(t *testing.T) {
	t.Parallel()
	l := wsguard.NewConnLimit(wsguard.DefaultMaxConns, wsguard.DefaultMaxConnsPerIP)
	for i := range wsguard.DefaultMaxConnsPerIP {
		if _, err := l.Acquire(guardRequest("198.51.100.1:1")); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
	if _, err := l.Acquire(guardRequest("198.51.100.1:1")); errlog.CodeOf(err) != errlog.ResourceExhausted {
		t.Fatalf("connection %d: %v, want resource_exhausted", wsguard.DefaultMaxConnsPerIP+1, err)
	}
	for i := wsguard.DefaultMaxConnsPerIP; i < wsguard.DefaultMaxConns; i++ {
		if _, err := l.Acquire(guardRequest(fmt.Sprintf("10.%d.%d.1:1", i/250, i%250))); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
	if _, err := l.Acquire(guardRequest("192.0.2.1:1")); errlog.CodeOf(err) != errlog.Unavailable {
		t.Fatalf("connection %d: %v, want unavailable", wsguard.DefaultMaxConns+1, err)
	}
}

// TestConnLimitConcurrent hammers one limit from many goroutines; run with
// -race. The caps must hold at every instant and every slot must come back.
func TestConnLimitConcurrent(t *testing.T) {
	t.Parallel()
	const total, perIP, clients, workers, rounds = 12, 4, 5, 8, 200
	l := wsguard.NewConnLimit(total, perIP)
	var open atomic.Int64
	var perClient [clients]atomic.Int64
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		for range workers {
			wg.Go(func() {
				r := guardRequest(fmt.Sprintf("198.51.100.%d:1", c+1))
				for range rounds {
					release, err := l.Acquire(r)
					if err != nil {
						if code := errlog.CodeOf(err); code != errlog.ResourceExhausted && code != errlog.Unavailable {
							t.Errorf("Acquire: %v", err)
						}
						refused.Add(1)
						continue
					}
					admitted.Add(1)
					if n := open.Add(1); n > total {
						t.Errorf("%d connections open, cap %d", n, total)
					}
					if n := perClient[c].Add(1); n > perIP {
						t.Errorf("client %d has %d connections, cap %d", c, n, perIP)
					}
					_ = l.Check(r)
					_ = l.Open()
					perClient[c].Add(-1)
					open.Add(-1)
					release()
					release()
				}
			})
		}
	}
	wg.Wait()
	if got := l.Open(); got != 0 {
		t.Errorf("Open = %d after every release, want 0", got)
	}
	if admitted.Load() == 0 || admitted.Load()+refused.Load() != clients*workers*rounds {
		t.Errorf("admitted %d, refused %d", admitted.Load(), refused.Load())
	}
}

func TestConnLimitHandler(t *testing.T) {
	t.Parallel()
	log, logger := newGuardLog()
	l := wsguard.NewConnLimit(10, 1)
	entered, leave := make(chan struct{}), make(chan struct{})
	h := wsguard.Instrument(logger, nil)(l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
		close(entered)
		<-leave
		w.WriteHeader(http.StatusNoContent)
	})))

	done := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, guardRequest("198.51.100.1:1"))
		done <- w
	}()
	<-entered
	if got := l.Open(); got != 1 {
		t.Errorf("Open while the handler runs = %d, want 1", got)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, guardRequest("198.51.100.1:2"))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || w.Body.String() != "rate limit exceeded" {
		t.Errorf("second connection: %d %q Retry-After %q", w.Code, w.Body.String(), w.Header().Get("Retry-After"))
	}
	close(leave)
	if w := <-done; w.Code != http.StatusNoContent {
		t.Errorf("first connection: %d", w.Code)
	}
	if got := l.Open(); got != 0 {
		t.Errorf("Open after the handler returned = %d, want 0", got)
	}

	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/panic", nil))
	}()
	if got := l.Open(); got != 0 {
		t.Errorf("Open after a panicking handler = %d, want 0", got)
	}
	line := log.oneLine(t)
	if line[errlog.KeyCode] != "resource_exhausted" || line[errlog.KeyStatus] != float64(429) {
		t.Errorf("log line = %v", line)
	}
}
