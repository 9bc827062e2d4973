//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsguard/kit/internal/bench"
)

// stats is what the server reports about itself at /stats.
type stats struct {
	CPU        time.Duration `json:"cpu_ns"`     // user + system CPU of the whole process
	Allocs     uint64        `json:"allocs"`     // heap allocations so far
	Heap       uint64        `json:"heap"`       // bytes in live and unswept heap objects
	Stacks     uint64        `json:"stacks"`     // bytes of goroutine stacks
	Goroutines int           `json:"goroutines"` // goroutines running
	RSS        uint64        `json:"rss"`        // resident set size in bytes, 0 where unknown
}

func readStats(gc bool) stats {
	if gc {
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	metrics.Read(s)
	return stats{
		CPU:        time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		Allocs:     bench.Allocs(),
		Heap:       s[0].Value.Uint64(),
		Stacks:     s[1].Value.Uint64(),
		Goroutines: runtime.NumGoroutine(),
		RSS:        rss(),
	}
}

// rss reads the resident set size from /proc (Linux).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// serve runs every variant under /<name>, every handshake variant under
// /hs/<name>, and /stats, on addr, with room for files open files. It
// prints "listening on <addr>" and serves until ctx ends or, when
// untilEOF is set (as the parent's child process), stdin closes.
func serve(ctx context.Context, addr, cpuprofile string, untilEOF bool, files uint64, stdout io.Writer) error {
	if err := bench.RaiseFileLimit(files); err != nil {
		fmt.Fprintln(os.Stderr, "load: server:", err)
	}
	mux := http.NewServeMux()
	for _, v := range bench.Variants() {
		mux.Handle("/"+v.Name, v.Handler())
	}
	for _, v := range bench.HandshakeVariants() {
		mux.Handle("/hs/"+v.Name, v.Handler())
	}
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(readStats(r.URL.Query().Has("gc")))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			ln.Close()
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			ln.Close()
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	if untilEOF {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Close does not wait for hijacked connections: their handlers end as
	// their clients go.
	err = hs.Close()
	<-served
	return err
}
