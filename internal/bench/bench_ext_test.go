package bench_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsguard/kit/internal/bench"
)

// TestVariantsEcho checks that every variant echoes every benchmark size,
// so that a broken variant fails here rather than skewing a ratio.
func TestVariantsEcho(t *testing.T) {
	t.Parallel()
	for _, v := range bench.Variants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewServer(v.Handler())
			defer ts.Close()
			for _, size := range sizes {
				l, err := bench.Open(v, "ws"+strings.TrimPrefix(ts.URL, "http"), 2, size)
				if err != nil {
					t.Fatalf("%d B: %v", size, err)
				}
				l.Reserve(4)
				_, err = l.Run(4)
				l.Close()
				if err != nil {
					t.Fatalf("%d B: %v", size, err)
				}
			}
		})
	}
}

func TestPayloadSizes(t *testing.T) {
	t.Parallel()
	for _, v := range bench.Variants() {
		for _, n := range sizes {
			if got := len(v.Payload(n)); got != n {
				t.Errorf("%s payload of %d bytes is %d", v.Name, n, got)
			}
		}
	}
}
