//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/wsguard/kit/internal/bench"
)

// sealedRow is one sealed variant's totals at one size.
type sealedRow struct {
	variant     string
	size        int
	trips       int
	wall        time.Duration
	allocs      uint64
	bytes       uint64
	p50, p99    time.Duration
	tripsRatios []float64 // per round, round trips/s against plain's of the same round
}

func (r sealedRow) rate() float64 { return float64(r.trips) / r.wall.Seconds() }

// heapAllocs returns the heap allocations this process has made so far,
// and their bytes.
func heapAllocs() (n, bytes uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return bench.Allocs(), s[0].Value.Uint64()
}

// measureSealed runs the sealed variants at every size: each variant's
// round trips over one connection, client and server in this process,
// interleaved in rounds with plain's, the order rotated each round. Each
// variant runs for about c.sealedRun per round, from its rate in a probe:
// a sealed round trip is up to a hundred times a plain one.
func measureSealed(ctx context.Context, c config, stdout io.Writer) ([]sealedRow, error) {
	variants, err := bench.SealedVariants()
	if err != nil {
		return nil, err
	}
	var out []sealedRow
	for _, size := range bench.SealedSizes {
		rows, err := measureSealedSize(ctx, c, variants, size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sizeName(size), err)
		}
		printSealed(stdout, rows)
		out = append(out, rows...)
	}
	return out, nil
}

func measureSealedSize(ctx context.Context, c config, variants []bench.SealedVariant, size int) ([]sealedRow, error) {
	echoes := make([]*bench.SealedEcho, len(variants))
	defer func() {
		for _, e := range echoes {
			if e != nil {
				e.Close()
			}
		}
	}()
	body := bench.JSON(size)
	// A context that can be canceled makes the coder/websocket client arm
	// a callback around every read and write, 20 allocations a round trip
	// that are not the variants': the runs take one that cannot, and
	// interruption is checked between them.
	runCtx := context.WithoutCancel(ctx)
	n := make([]int, len(variants))
	for i, v := range variants {
		e, err := bench.OpenSealed(v, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.Name, err)
		}
		echoes[i] = e
		// Warm up, and size the variant's share of a round from its rate.
		const probe = 5
		e.Reserve(probe)
		if _, err := e.Run(runCtx, probe); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", v.Name, err)
		}
		d, err := e.Run(runCtx, probe)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.Name, err)
		}
		e.ResetLatency()
		n[i] = max(probe, int(probe/d.Seconds()*c.sealedRun.Seconds()))
		e.Reserve(n[i] * c.rounds)
	}
	runtime.GC()
	rows := make([]sealedRow, len(variants))
	rates := make([]float64, len(variants))
	for r := range c.rounds {
		for k := range variants {
			i := (k + r) % len(variants)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			a0, b0 := heapAllocs()
			d, err := echoes[i].Run(runCtx, n[i])
			a1, b1 := heapAllocs()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", variants[i].Name, err)
			}
			rates[i] = float64(n[i]) / d.Seconds()
			rows[i].trips += n[i]
			rows[i].wall += d
			rows[i].allocs += a1 - a0
			rows[i].bytes += b1 - b0
		}
		for i := range rows {
			rows[i].tripsRatios = append(rows[i].tripsRatios, rates[i]/rates[0])
		}
	}
	for i, v := range variants {
		rows[i].variant, rows[i].size = v.Name, size
		rows[i].p50, rows[i].p99 = echoes[i].Latency()
	}
	return rows, nil
}

func printSealed(w io.Writer, rows []sealedRow) {
	for _, r := range rows {
		x, _, _ := median(r.tripsRatios)
		fmt.Fprintf(w, "sealed  %6s  %-11s %7.0f round trips/s  %5.2fx  p50 %8v  p99 %8v  %6.0f allocs/round trip  %7.0f B/round trip\n",
			sizeName(r.size), r.variant, r.rate(), x, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond),
			float64(r.allocs)/float64(r.trips), float64(r.bytes)/float64(r.trips))
	}
}

func writeSealedTable(w io.Writer, c config, rows []sealedRow) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Sealed messages: round trips of a JSON body over one connection to a guarded echo, measured in the load command's own process, client and server together as in BenchmarkSealed: "+
		"plain sends the body as it is; sealed-dir seals it with validate.SealClient under a shared key and the server opens it with validate.Sealed and seals the echo back (Sealed.Send); sealed-ecdh does the same with ECDH-ES+A256KW under an EC P-256 key. "+
		"%d rounds, each variant running for about %v per round in rotated order. "+
		"x plain = round trips/s over plain's in the same round, median (range); round trips/s, latencies and allocations (the client's and the server's) are totals over the rounds.\n\n",
		c.rounds, c.sealedRun)
	fmt.Fprintln(w, "| size | variant | x plain | round trips/s | p50 us | p99 us | allocs/round trip | B/round trip |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		x, lo, hi := median(r.tripsRatios)
		fmt.Fprintf(w, "| %s | %s | %.2f (%.2f-%.2f) | %.0f | %s | %s | %.0f | %.0f |\n",
			sizeName(r.size), r.variant, x, lo, hi, r.rate(), us(r.p50), us(r.p99),
			float64(r.allocs)/float64(r.trips), float64(r.bytes)/float64(r.trips))
	}
}
