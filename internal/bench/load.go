package bench

import (
	"net/http"
	"runtime/metrics"
	"slices"
	"sync"
	"time"
)

// Load is a set of connections to one server, driven closed-loop: each
// client sends its next message as soon as the echo of the previous one
// arrives.
type Load struct {
	clients []*Client
	rtts    [][]time.Duration // per client, reserved ahead so that Run allocates nothing per message
	errs    []error
	work    []chan int // one worker goroutine per client, started once so that Run allocates nothing
	done    sync.WaitGroup
}

// Open dials conns connections to wsURL, each sending v's payload of size
// bytes, a few handshakes at a time.
func Open(v Variant, wsURL string, conns, size int) (*Load, error) {
	var header http.Header
	if v.Header != nil {
		header = v.Header()
	}
	payload := v.Payload(size)
	l := &Load{
		clients: make([]*Client, conns),
		rtts:    make([][]time.Duration, conns),
		errs:    make([]error, conns),
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := Dial(wsURL, header, payload)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			l.clients[i] = c
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		l.Close()
		return nil, errs[0]
	}
	l.work = make([]chan int, conns)
	for i := range l.clients {
		l.work[i] = make(chan int, 1)
		go l.worker(i, l.work[i])
	}
	return l, nil
}

// worker runs client i's share of each Run it receives on work.
func (l *Load) worker(i int, work <-chan int) {
	c := l.clients[i]
	for k := range work {
		rtt := l.rtts[i]
		t0 := time.Now()
		for range k {
			if err := c.RoundTrip(); err != nil {
				l.errs[i] = err
				break
			}
			t1 := time.Now()
			rtt = append(rtt, t1.Sub(t0))
			t0 = t1
		}
		l.rtts[i] = rtt
		l.done.Done()
	}
}

// share returns how many of n messages client i sends.
func (l *Load) share(n, i int) int {
	k := n / len(l.clients)
	if i < n%len(l.clients) {
		k++
	}
	return k
}

// Reserve makes room for the round-trip times of n more messages.
func (l *Load) Reserve(n int) {
	for i := range l.clients {
		l.rtts[i] = slices.Grow(l.rtts[i], l.share(n, i))
	}
}

// Run sends n messages in all across the connections and returns the wall
// time taken. Call Reserve(n) first to keep the run free of allocations.
func (l *Load) Run(n int) (time.Duration, error) {
	clear(l.errs)
	start := time.Now()
	for i := range l.clients {
		if k := l.share(n, i); k > 0 {
			l.done.Add(1)
			l.work[i] <- k
		}
	}
	l.done.Wait()
	d := time.Since(start)
	for _, err := range l.errs {
		if err != nil {
			return d, err
		}
	}
	return d, nil
}

// Latency returns the median and 99th percentile round trip of the
// messages run since the last ResetLatency.
func (l *Load) Latency() (p50, p99 time.Duration) {
	var all []time.Duration
	for _, r := range l.rtts {
		all = append(all, r...)
	}
	if len(all) == 0 {
		return 0, 0
	}
	slices.Sort(all)
	return all[len(all)*50/100], all[min(len(all)-1, len(all)*99/100)]
}

// ResetLatency forgets the recorded round trips.
func (l *Load) ResetLatency() {
	for i := range l.rtts {
		l.rtts[i] = l.rtts[i][:0]
	}
}

// Close drops every connection and ends the workers.
func (l *Load) Close() {
	for _, w := range l.work {
		close(w)
	}
	l.work = nil
	for _, c := range l.clients {
		if c != nil {
			_ = c.Close()
		}
	}
}

var allocSamples = []metrics.Sample{
	{Name: "/gc/heap/allocs:objects"},
	{Name: "/gc/heap/tiny/allocs:objects"},
}

// Allocs returns the number of heap allocations made by the process so
// far, tiny ones included, as runtime.MemStats.Mallocs counts them but
// without stopping the world.
func Allocs() uint64 {
	s := slices.Clone(allocSamples)
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}
