package bench_test

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/kit/internal/bench"
)

var (
	sizes      = []int{32, 1 << 10, 32 << 10}
	connCounts = []int{1, 64, 1000}
)

// interleave runs the benchmark's b.N operations with run, in rounds
// when many is set, each round next to as many operations of the
// reference (nil: none), and returns the time each took. The timer runs
// for run only. The two take turns going first: in memory, the second of
// a pair ran up to a fifth faster for the state the first left warm.
func interleave(b *testing.B, many bool, reference, run func(n int) time.Duration) (refTime, varTime time.Duration) {
	rounds := 1
	if many {
		rounds = 8
	}
	for r := range rounds {
		n := b.N / rounds
		if r == rounds-1 {
			n = b.N - n*(rounds-1)
		}
		ref := func() {
			if reference != nil {
				b.StopTimer()
				refTime += reference(n)
				b.StartTimer()
			}
		}
		if r%2 == 0 {
			ref()
		}
		varTime += run(n)
		if r%2 == 1 {
			ref()
		}
	}
	return refTime, varTime
}

func sizeName(n int) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

// server runs v on a loopback httptest server until the benchmark ends.
func server(b *testing.B, v bench.Variant) string {
	b.Helper()
	ts := httptest.NewServer(v.Handler())
	b.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

func open(b *testing.B, v bench.Variant, conns, size int) *bench.Load {
	b.Helper()
	if conns > 100 {
		if err := bench.RaiseFileLimit(uint64(4*conns + 256)); err != nil {
			b.Skipf("%v (raise ulimit -n)", err)
		}
	}
	l, err := bench.Open(v, server(b, v), conns, size)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.Close)
	return l
}

// BenchmarkEcho runs the closed-loop echo of every variant at every size
// and connection count. One op is one message round trip; ns/op and
// allocs/op count the variant only. Each variant's run is interleaved,
// in rounds, with a run of the raw coder/websocket reference over the
// same number of messages, and x-coder is the variant's throughput over
// the reference's: the ratio the performance budget is stated in.
// Because the client allocates nothing per message, allocs/op is the
// server's.
func BenchmarkEcho(b *testing.B) {
	for _, size := range sizes {
		for _, conns := range connCounts {
			for _, v := range bench.Variants() {
				b.Run(fmt.Sprintf("%s/conns=%d/%s", sizeName(size), conns, v.Name), func(b *testing.B) {
					benchEcho(b, v, conns, size)
				})
			}
		}
	}
}

func benchEcho(b *testing.B, v bench.Variant, conns, size int) {
	var ref *bench.Load
	if v.Name != bench.Coder.Name {
		ref = open(b, bench.Coder, conns, size)
	}
	l := open(b, v, conns, size)
	for _, w := range []*bench.Load{ref, l} {
		if w == nil {
			continue
		}
		// Warm up: pooled buffers, the transport's lazily made state.
		w.Reserve(conns)
		if _, err := w.Run(conns); err != nil {
			b.Fatal(err)
		}
		w.ResetLatency()
		w.Reserve(b.N)
	}
	var refAllocs, varAllocs uint64
	measure := func(w *bench.Load, allocs *uint64) func(int) time.Duration {
		return func(n int) time.Duration {
			a := bench.Allocs()
			d, err := w.Run(n)
			*allocs += bench.Allocs() - a
			if err != nil {
				b.Fatal(err)
			}
			return d
		}
	}
	var reference func(int) time.Duration
	if ref != nil {
		reference = measure(ref, &refAllocs)
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	refTime, varTime := interleave(b, b.N >= 8*conns, reference, measure(l, &varAllocs))
	b.StopTimer()
	msgs := float64(b.N)
	b.ReportMetric(msgs/varTime.Seconds(), "msgs/s")
	b.ReportMetric(float64(varAllocs)/msgs, "allocs/msg")
	p50, p99 := l.Latency()
	b.ReportMetric(float64(p50.Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99-us")
	if ref != nil {
		b.ReportMetric(refTime.Seconds()/varTime.Seconds(), "x-coder")
		b.ReportMetric(float64(refAllocs)/msgs, "coder-allocs/msg")
	}
}
