package prom_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/observe/prom"
	"github.com/wsguard/kit/wsguard"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var echo = wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	return c.Send(ctx, m.Type, m.Data)
})

// requireToken refuses handshakes without "X-Token: ok", as an
// authentication middleware would.
func requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Token") != "ok" {
			wsguard.Reject(w, r, nil, errlog.NewError(errlog.Unauthenticated, errors.New("no token")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestScrapeAfterSession runs a scripted session against a server with the
// Prometheus observer and checks the counts its /metrics endpoint serves.
func TestScrapeAfterSession(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	obs, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prom.New(reg); err == nil {
		t.Error("second New on the same registry: no error")
	}
	srv := wsguard.New(echo,
		wsguard.WithLogger(slog.New(slog.DiscardHandler)),
		wsguard.WithObserver(obs),
		wsguard.WithMessageRate(1, 4),
		wsguard.WithHandshake(requireToken))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer metrics.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok := &websocket.DialOptions{HTTPHeader: http.Header{"X-Token": {"ok"}}}

	// 1: three messages of 10, 100 and 1000 bytes echoed, then a normal close.
	c, _, err := websocket.Dial(ctx, url, ok)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{10, 100, 1000} {
		if err := c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("a", n))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}

	// 2: over the message rate (burst 4): closed with 4429.
	c, _, err = websocket.Dial(ctx, url, ok)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_ = c.Write(ctx, websocket.MessageText, []byte("b"))
	}
	for {
		if _, _, err = c.Read(ctx); err != nil {
			break
		}
	}
	if got := websocket.CloseStatus(err); got != errlog.CloseResourceExhausted {
		t.Errorf("close status %d, want %d (%v)", got, errlog.CloseResourceExhausted, err)
	}

	// 3: no token: 401. 4: a cross-origin page: 403.
	if _, resp, err := websocket.Dial(ctx, url, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %v, %v", resp, err)
	}
	if _, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{
		"X-Token": {"ok"}, "Origin": {"https://evil.example"}}}); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross origin: %v, %v", resp, err)
	}

	want := []string{
		`wsguard_connections_open 0`,
		`wsguard_handshakes_total{code="",result="accepted"} 2`,
		`wsguard_handshakes_total{code="unauthenticated",result="rejected"} 1`,
		`wsguard_handshakes_total{code="permission_denied",result="rejected"} 1`,
		`wsguard_connections_closed_total{code="canceled",status="1000"} 1`,
		`wsguard_connections_closed_total{code="resource_exhausted",status="4429"} 1`,
		`wsguard_messages_total{direction="in"} 7`,
		`wsguard_messages_total{direction="out"} 7`,
		`wsguard_message_size_bytes_count{direction="in"} 7`,
		`wsguard_message_size_bytes_sum{direction="in"} 1114`,
		`wsguard_message_size_bytes_bucket{direction="in",le="64"} 5`,
		`wsguard_message_size_bytes_bucket{direction="in",le="256"} 6`,
		`wsguard_handler_duration_seconds_count 7`,
		`wsguard_limited_total{limit="message_rate"} 1`,
		`wsguard_auth_failures_total{reason="invalid token"} 1`,
	}
	// The server ends connections on their own goroutines: wait for it.
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; {
		body = scrape(t, metrics.URL)
		if missing(body, want) == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := missing(body, want); m != "" {
		t.Errorf("scrape lacks %q; got:\n%s", m, body)
	}
	for _, bad := range []string{"127.0.0.1", "remote", "sub="} {
		if strings.Contains(body, bad) {
			t.Errorf("scrape contains %q, a per-client label", bad)
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// missing returns the first of want that is not a line of body, or "".
func missing(body string, want []string) string {
	lines := make(map[string]bool)
	for l := range strings.Lines(body) {
		lines[strings.TrimSuffix(l, "\n")] = true
	}
	for _, w := range want {
		if !lines[w] {
			return w
		}
	}
	return ""
}

// TestSendQueueMetrics queues a message and then one over the bound: the queue's
// length is a histogram, and the member cut for going over it is counted
// as limited by send_queue.
func TestSendQueueMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	obs, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		_ = c.Enqueue(wsguard.MessageText, []byte("queued"))
		// Over the 8-byte bound whether or not the first is written yet.
		_ = c.Enqueue(wsguard.MessageText, []byte("more than 8 bytes"))
		return nil
	}), wsguard.WithLogger(slog.New(slog.DiscardHandler)), wsguard.WithObserver(obs), wsguard.WithSendQueue(8, 1024))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("go")); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err = c.Read(ctx); err != nil {
			break
		}
	}
	if got := websocket.CloseStatus(err); got != errlog.CloseResourceExhausted {
		t.Errorf("close status %d, want %d (%v)", got, errlog.CloseResourceExhausted, err)
	}
	want := []string{
		`wsguard_send_queue_length_bucket{le="1"} 1`,
		`wsguard_limited_total{limit="send_queue"} 1`,
	}
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer metrics.Close()
	body := scrape(t, metrics.URL)
	if m := missing(body, want); m != "" {
		t.Errorf("scrape lacks %q; got:\n%s", m, body)
	}
}

// TestReasonLabelsBounded checks that free-text labels cannot grow the
// number of series without bound.
func TestReasonLabelsBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	obs, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		obs.Observe(context.Background(), wsguard.Event{Kind: wsguard.EventAuthFailed, Reason: strings.Repeat("x", i)})
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "wsguard_auth_failures_total" && len(mf.GetMetric()) > 33 {
			t.Errorf("%d auth failure series", len(mf.GetMetric()))
		}
	}
}

// BenchmarkObserveMessage checks that the per-message events allocate nothing.
func BenchmarkObserveMessage(b *testing.B) {
	obs, err := prom.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		obs.Observe(ctx, wsguard.Event{Kind: wsguard.EventMessageIn, Size: 100, Duration: time.Microsecond})
		obs.Observe(ctx, wsguard.Event{Kind: wsguard.EventMessageOut, Size: 100})
	}
}
