package wsguard_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// handshakeStep is one request in a rate test: advance the clock, then send.
type handshakeStep struct {
	advance time.Duration
	remote  string
	want    time.Duration // -1: admitted; otherwise the Retry-After delay
}

const admitted = -1

func TestHandshakeLimit(t *testing.T) {
	t.Parallel()
	const a, b = "198.51.100.7:1", "198.51.100.8:1"
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		steps     []handshakeStep
	}{
		{"burst then refill", 1, 3, []handshakeStep{
			{0, a, admitted}, {0, a, admitted}, {0, a, admitted},
			{0, a, time.Second},
			{500 * time.Millisecond, a, 500 * time.Millisecond},
			{500 * time.Millisecond, a, admitted},
			{0, a, time.Second},
		}},
		{"refill is capped at the burst", 2, 2, []handshakeStep{
			{0, a, admitted}, {time.Hour, a, admitted}, {0, a, admitted},
			{0, a, 500 * time.Millisecond},
		}},
		{"clients are independent", 1, 1, []handshakeStep{
			{0, a, admitted}, {0, a, time.Second}, {0, b, admitted}, {0, b, time.Second},
		}},
		{"mapped IPv4 is the same client", 1, 1, []handshakeStep{
			{0, a, admitted}, {0, "[::ffff:198.51.100.7]:2", time.Second},
		}},
		{"IPv6 /64 is one client", 1, 1, []handshakeStep{
			{0, "[2001:db8:1:2::1]:1", admitted}, {0, "[2001:db8:1:2:ffff::9]:1", time.Second},
		}},
		{"IPv6 /64s are independent", 1, 1, []handshakeStep{
			{0, "[2001:db8:1:2::1]:1", admitted}, {0, "[2001:db8:1:3::1]:1", admitted},
		}},
		{"unknown IPs share a bucket", 1, 1, []handshakeStep{
			{0, "@", admitted}, {0, "", time.Second},
		}},
		{"fractional rate", 0.25, 1, []handshakeStep{
			{0, a, admitted}, {time.Second, a, 3 * time.Second},
		}},
		{"the server's defaults", wsguard.DefaultHandshakeRate, wsguard.DefaultHandshakeBurst, append(repeatStep(handshakeStep{0, a, admitted}, wsguard.DefaultHandshakeBurst),
			handshakeStep{0, a, time.Second / wsguard.DefaultHandshakeRate})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newGuardClock()
			l := wsguard.NewHandshakeLimit(tt.perSecond, tt.burst, wsguard.WithGuardClock(clock.Now))
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				err := l.Check(guardRequest(s.remote))
				if s.want == admitted {
					if err != nil {
						t.Fatalf("step %d: Check = %v, want admitted", i, err)
					}
					continue
				}
				if c := errlog.CodeOf(err); c != errlog.ResourceExhausted {
					t.Fatalf("step %d: Check = %v, want resource_exhausted", i, err)
				}
				if got := wsguard.RetryAfter(err); got != s.want {
					t.Fatalf("step %d: RetryAfter = %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

func repeatStep(s handshakeStep, n int) []handshakeStep {
	out := make([]handshakeStep, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestHandshakeLimitHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		perSecond  float64
		wantRetry  string
		wantStatus []int
	}{
		{"sub-second delay rounds up to 1", 10, "1", []int{204, 204, 429}},
		{"slow rate", 0.4, "3", []int{204, 204, 429}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, logger := newGuardLog()
			clock := newGuardClock()
			h := wsguard.Instrument(logger, nil)(wsguard.NewHandshakeLimit(tt.perSecond, 2, wsguard.WithGuardClock(clock.Now)).Handler(guardOK))
			var last *httptest.ResponseRecorder
			for i, want := range tt.wantStatus {
				last = httptest.NewRecorder()
				h.ServeHTTP(last, guardRequest("198.51.100.7:1"))
				if last.Code != want {
					t.Fatalf("request %d: status %d, want %d", i, last.Code, want)
				}
			}
			if got := last.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			if got := last.Body.String(); got != "rate limit exceeded" {
				t.Errorf("body = %q", got)
			}
			line := log.oneLine(t)
			if line[errlog.KeyCode] != "resource_exhausted" || line[errlog.KeyStatus] != float64(http.StatusTooManyRequests) || line["level"] != "WARN" {
				t.Errorf("log line = %v", line)
			}
		})
	}
}
