package bench_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wsguard/kit/internal/bench"
)

func openSealed(tb testing.TB, v bench.SealedVariant, body []byte) *bench.SealedEcho {
	tb.Helper()
	e, err := bench.OpenSealed(v, body)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	return e
}

func sealedVariants(tb testing.TB) []bench.SealedVariant {
	tb.Helper()
	vs, err := bench.SealedVariants()
	if err != nil {
		tb.Fatal(err)
	}
	return vs
}

// TestSealedRoundTrips checks that every sealed variant echoes every
// benchmark size, and that a run records one round trip per message.
func TestSealedRoundTrips(t *testing.T) {
	t.Parallel()
	for _, v := range sealedVariants(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, size := range bench.SealedSizes {
				e := openSealed(t, v, bench.JSON(size))
				e.Reserve(3)
				if _, err := e.Run(ctx, 3); err != nil {
					t.Fatalf("%d B: %v", size, err)
				}
				if p50, p99 := e.Latency(); p50 <= 0 || p99 < p50 {
					t.Errorf("%d B: latency p50 %v, p99 %v", size, p50, p99)
				}
				e.ResetLatency()
				if p50, p99 := e.Latency(); p50 != 0 || p99 != 0 {
					t.Errorf("%d B: latency after a reset: p50 %v, p99 %v", size, p50, p99)
				}
			}
		})
	}
}

// BenchmarkSealed is a round trip over one connection, client side
// included: plain JSON against the same JSON sealed with a shared key
// ("dir") and with ECDH-ES+A256KW. One op is one message and its echo;
// allocs/op counts the client's and the server's. The sealed variants
// report x-plain, their throughput over plain round trips interleaved
// with theirs.
func BenchmarkSealed(b *testing.B) {
	for _, size := range bench.SealedSizes {
		body := bench.JSON(size)
		vs := sealedVariants(b)
		for _, v := range vs {
			b.Run(fmt.Sprintf("%s/%s", sizeName(size), v.Name), func(b *testing.B) {
				ctx := context.Background()
				run := func(e *bench.SealedEcho) func(int) time.Duration {
					e.Reserve(b.N)
					return func(n int) time.Duration {
						d, err := e.Run(ctx, n)
						if err != nil {
							b.Fatal(err)
						}
						return d
					}
				}
				var reference func(int) time.Duration
				if v.Key != nil {
					reference = run(openSealed(b, vs[0], body))
				}
				e := openSealed(b, v, body)
				if err := e.RoundTrip(ctx); err != nil {
					b.Fatal(err)
				}
				variant := run(e)
				b.ReportAllocs()
				b.ResetTimer()
				refTime, varTime := interleave(b, b.N >= 8, reference, variant)
				b.StopTimer()
				if reference != nil {
					b.ReportMetric(refTime.Seconds()/varTime.Seconds(), "x-plain")
				}
			})
		}
	}
}
