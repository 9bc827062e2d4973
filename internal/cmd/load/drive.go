//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsguard/kit/internal/bench"
)

// remote is the server under load, seen through its /stats endpoint.
type remote struct {
	base string // http://host:port
	hc   *http.Client
}

func (r *remote) stats(ctx context.Context, gc bool) (stats, error) {
	u := r.base + "/stats"
	if gc {
		u += "?gc"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return stats{}, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return stats{}, err
	}
	defer resp.Body.Close()
	var s stats
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// settle waits until the server runs at most want goroutines, so that one
// measurement does not pay for the teardown of the previous one.
func (r *remote) settle(ctx context.Context, want int) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := r.stats(ctx, false)
		if err != nil || s.Goroutines <= want || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startChild runs this program as the server, on loopback, and returns its
// address and a function that stops it.
func startChild(c config, stderr io.Writer) (string, func() error, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	args := []string{"-child", "-idle", strconv.Itoa(c.idle), "-conns", joinInts(c.conns)}
	if c.cpuprofile != "" {
		args = append(args, "-server-cpuprofile", c.cpuprofile)
	}
	cmd := exec.Command(exe, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() error {
		stdin.Close()
		return cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = stop()
		return "", nil, fmt.Errorf("server did not start: %w", err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on ")), stop, nil
}

// row is one variant's totals in one cell.
type row struct {
	variant  string
	msgs     int
	wall     time.Duration
	cpu      time.Duration
	allocs   uint64
	p50, p99 time.Duration
	// Per round, against the reference's run of the same round.
	rateRatios, cpuRatios []float64
	// Per round, against gorilla's run of the same round (echo cells).
	gorillaRate, gorillaCPU []float64
}

func (r row) rate() float64            { return float64(r.msgs) / r.wall.Seconds() }
func (r row) cpuPerMsg() time.Duration { return r.cpu / time.Duration(r.msgs) }
func (r row) allocsPerMsg() float64    { return float64(r.allocs) / float64(r.msgs) }

type cell struct {
	size, conns int
	rows        []row
}

type idleRow struct {
	variant    string
	state      string // what the connections did before going quiet
	conns      int
	memPerConn float64 // heap objects + stacks
	heap       float64
	stacks     float64
	rssPerConn float64
	goroutines float64
}

// fileMargin is the open files left for everything but the connections
// measured: the stats client, the runtime, a cell's stragglers.
const fileMargin = 512

// filesFor returns the open files one side of a run needs: a cell opens
// every variant's connections at once; the idle measurement one
// variant's; a broadcast cell a room of every variant, in one process
// with its members.
func filesFor(c config) uint64 {
	rooms := 0
	if c.broadcasts > 0 {
		rooms = 2*len(bench.RoomVariants())*c.bcMembers + fileMargin
	}
	return uint64(max(16<<10, len(bench.Variants())*slices.Max(c.conns)+fileMargin, c.idle+fileMargin, rooms))
}

// fitIdle lowers c.idle to what the open-files limit leaves room for,
// after raising the limit as far as the hard limit allows, and says so.
func fitIdle(c *config, stderr io.Writer) {
	if err := bench.RaiseFileLimit(filesFor(*c)); err != nil {
		fmt.Fprintln(stderr, "load:", err)
	}
	c.idleWanted = c.idle
	limit := bench.FileLimit()
	if c.idle == 0 || limit >= uint64(c.idle+fileMargin) {
		return
	}
	c.idle = max(int(limit)-fileMargin, 0)
	fmt.Fprintf(stderr, "load: WARNING: the open-files limit is %d and cannot be raised (the hard limit: ulimit -Hn): "+
		"measuring idle memory at %d connections instead of %d\n", limit, c.idle, c.idleWanted)
}

func drive(ctx context.Context, c config, stdout, stderr io.Writer) error {
	fitIdle(&c, stderr)
	var variants []bench.Variant
	if len(c.variants) == 0 {
		variants = bench.Variants()
	}
	for _, name := range c.variants {
		v, ok := bench.VariantByName(name)
		if !ok {
			return fmt.Errorf("no variant %q in this build", name)
		}
		variants = append(variants, v)
	}
	if variants[0].Name != bench.Coder.Name {
		variants = append([]bench.Variant{bench.Coder}, variants...)
	}

	addr := c.addr
	if addr == "" {
		a, stop, err := startChild(c, stderr)
		if err != nil {
			return err
		}
		defer func() { _ = stop() }()
		addr = a
	}
	srv := &remote{base: "http://" + addr, hc: &http.Client{Timeout: 30 * time.Second}}
	defer srv.hc.CloseIdleConnections()
	base, err := srv.stats(ctx, true)
	if err != nil {
		return err
	}
	started, load := time.Now(), loadAvg()

	var cells []cell
	for _, size := range c.sizes {
		for _, conns := range c.conns {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			cl, err := measure(ctx, srv, "ws://"+addr, variants, size, conns, c)
			if err != nil {
				return fmt.Errorf("%d B x %d conns: %w", size, conns, err)
			}
			cells = append(cells, cl)
			printCell(stdout, cl)
			if err := srv.settle(ctx, base.Goroutines+2); err != nil {
				return err
			}
		}
	}
	var handshakes []row
	if c.hsRun > 0 {
		if handshakes, err = measureHandshakes(ctx, srv, "ws://"+addr+"/hs/", c, base.Goroutines); err != nil {
			return fmt.Errorf("handshakes: %w", err)
		}
		printHandshakes(stdout, handshakes)
	}
	var idle []idleRow
	if c.idle > 0 {
		for _, v := range variants {
			r, err := measureIdle(ctx, srv, "ws://"+addr, v, c.idle, base.Goroutines)
			if err != nil {
				return fmt.Errorf("idle %s: %w", v.Name, err)
			}
			idle = append(idle, r...)
		}
	}
	res := results{cells: cells, handshakes: handshakes, idle: idle}
	// The rooms and the sealed echoes run in this process: the server
	// has only to let the idle connections go first.
	if c.broadcasts > 0 || c.sealedRun > 0 {
		if err := srv.settle(ctx, base.Goroutines+2); err != nil {
			return err
		}
	}
	if c.broadcasts > 0 {
		if res.broadcast, err = measureBroadcasts(ctx, c, stdout); err != nil {
			return fmt.Errorf("broadcast: %w", err)
		}
	}
	if c.sealedRun > 0 {
		if res.sealed, err = measureSealed(ctx, c, stdout); err != nil {
			return fmt.Errorf("sealed: %w", err)
		}
	}
	var md bytes.Buffer
	writeTable(&md, c, res, started, time.Since(started), load)
	fmt.Fprintln(stdout)
	_, _ = stdout.Write(md.Bytes())
	if c.table != "" {
		return writeResults(c.table, md.Bytes())
	}
	return nil
}

// results are the measurements of one run, each nil when skipped.
type results struct {
	cells      []cell
	handshakes []row
	idle       []idleRow
	broadcast  []fanoutCell
	sealed     []sealedRow
}

// measure runs one cell: every variant over the same number of messages
// per round, the order rotated each round.
func measure(ctx context.Context, srv *remote, wsBase string, variants []bench.Variant, size, conns int, c config) (cell, error) {
	loads := make([]*bench.Load, len(variants))
	defer func() {
		for _, l := range loads {
			if l != nil {
				l.Close()
			}
		}
	}()
	for i, v := range variants {
		l, err := bench.Open(v, wsBase+"/"+v.Name, conns, size)
		if err != nil {
			return cell{}, fmt.Errorf("%s: %w", v.Name, err)
		}
		loads[i] = l
		l.Reserve(4 * conns)
		if _, err := l.Run(4 * conns); err != nil {
			return cell{}, fmt.Errorf("%s: warm-up: %w", v.Name, err)
		}
		l.ResetLatency()
	}
	// Size each run from the reference's rate, so that every variant runs
	// the same messages.
	probe := max(conns*5, 2000)
	loads[0].Reserve(probe)
	d, err := loads[0].Run(probe)
	if err != nil {
		return cell{}, err
	}
	loads[0].ResetLatency()
	n := max(5*conns, int(float64(probe)/d.Seconds()*c.runTime.Seconds()))

	rows := make([]row, len(variants))
	for i, v := range variants {
		rows[i].variant = v.Name
		loads[i].Reserve(n * c.rounds)
	}
	wall := make([]time.Duration, len(variants))
	cpu := make([]time.Duration, len(variants))
	for r := range c.rounds {
		for k := range variants {
			i := (k + r) % len(variants)
			before, err := srv.stats(ctx, false)
			if err != nil {
				return cell{}, err
			}
			d, err := loads[i].Run(n)
			if err != nil {
				return cell{}, fmt.Errorf("%s: %w", variants[i].Name, err)
			}
			after, err := srv.stats(ctx, false)
			if err != nil {
				return cell{}, err
			}
			wall[i], cpu[i] = d, after.CPU-before.CPU
			rows[i].msgs += n
			rows[i].wall += d
			rows[i].cpu += cpu[i]
			rows[i].allocs += after.Allocs - before.Allocs
		}
		g := slices.IndexFunc(variants, func(v bench.Variant) bool { return v.Name == "gorilla" })
		for i := range rows {
			rows[i].rateRatios = append(rows[i].rateRatios, wall[0].Seconds()/wall[i].Seconds())
			rows[i].cpuRatios = append(rows[i].cpuRatios, cpu[i].Seconds()/max(cpu[0].Seconds(), 1e-9))
			if g >= 0 {
				rows[i].gorillaRate = append(rows[i].gorillaRate, wall[g].Seconds()/wall[i].Seconds())
				rows[i].gorillaCPU = append(rows[i].gorillaCPU, cpu[i].Seconds()/max(cpu[g].Seconds(), 1e-9))
			}
		}
	}
	for i := range rows {
		rows[i].p50, rows[i].p99 = loads[i].Latency()
	}
	return cell{size: size, conns: conns, rows: rows}, nil
}

// measureHandshakes runs a reconnect storm against every handshake
// variant, over the same number of handshakes per round in rotated order,
// and returns one row per variant, the bare upgrade first.
func measureHandshakes(ctx context.Context, srv *remote, wsBase string, c config, baseGoroutines int) ([]row, error) {
	variants := bench.HandshakeVariants()
	headers := make([][]http.Header, len(variants))
	for i, v := range variants {
		if v.Headers != nil {
			headers[i] = v.Headers()
		}
		// Warm up, and fill the verified-token cache: the storm is of
		// known tokens.
		if _, err := bench.Storm(wsBase+v.Name, headers[i], 2*bench.KnownTokens); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", v.Name, err)
		}
	}
	const probe = 500
	d, err := bench.Storm(wsBase+variants[0].Name, nil, probe)
	if err != nil {
		return nil, err
	}
	n := max(2*bench.KnownTokens, int(probe/d.Seconds()*c.hsRun.Seconds()))
	rows := make([]row, len(variants))
	wall := make([]time.Duration, len(variants))
	cpu := make([]time.Duration, len(variants))
	for r := range c.rounds {
		for k := range variants {
			i := (k + r) % len(variants)
			// The previous storm's connections end after its clients go.
			if err := srv.settle(ctx, baseGoroutines+2); err != nil {
				return nil, err
			}
			before, err := srv.stats(ctx, false)
			if err != nil {
				return nil, err
			}
			d, err := bench.Storm(wsBase+variants[i].Name, headers[i], n)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", variants[i].Name, err)
			}
			if err := srv.settle(ctx, baseGoroutines+2); err != nil {
				return nil, err
			}
			after, err := srv.stats(ctx, false)
			if err != nil {
				return nil, err
			}
			wall[i], cpu[i] = d, after.CPU-before.CPU
			rows[i].variant = variants[i].Name
			rows[i].msgs += n
			rows[i].wall += d
			rows[i].cpu += cpu[i]
			rows[i].allocs += after.Allocs - before.Allocs
		}
		for i := range rows {
			rows[i].rateRatios = append(rows[i].rateRatios, wall[0].Seconds()/wall[i].Seconds())
			rows[i].cpuRatios = append(rows[i].cpuRatios, cpu[i].Seconds()/max(cpu[0].Seconds(), 1e-9))
		}
	}
	return rows, nil
}

func printHandshakes(w io.Writer, rows []row) {
	for _, r := range rows {
		x, _, _ := median(r.rateRatios)
		cx, _, _ := median(r.cpuRatios)
		fmt.Fprintf(w, "handshakes  %-13s %7.0f/s  %5.2fx  cpu %7v/handshake %5.2fx  %6.1f allocs/handshake\n",
			r.variant, r.rate(), x, r.cpuPerMsg().Round(100*time.Nanosecond), cx, r.allocsPerMsg())
	}
}

// measureIdle opens n connections that send nothing and reports what each
// costs the server once they are all established.
// measureIdle opens n connections of variant v and measures what they
// hold once quiet: right after the handshake, then after each has sent
// one message and had its echo (what handling a message leaves behind).
func measureIdle(ctx context.Context, srv *remote, wsBase string, v bench.Variant, n, baseGoroutines int) ([]idleRow, error) {
	if err := srv.settle(ctx, baseGoroutines+2); err != nil {
		return nil, err
	}
	before, err := srv.stats(ctx, true)
	if err != nil {
		return nil, err
	}
	l, err := bench.Open(v, wsBase+"/"+v.Name, n, 32)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	// A handshake's response precedes the server's bookkeeping: wait for
	// every serving goroutine.
	deadline := time.Now().Add(10 * time.Second)
	var opened stats
	for {
		if opened, err = srv.stats(ctx, true); err != nil {
			return nil, err
		}
		if opened.Goroutines-before.Goroutines >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.Reserve(n)
	if _, err := l.Run(n); err != nil {
		return nil, err
	}
	talked, err := srv.stats(ctx, true)
	if err != nil {
		return nil, err
	}
	row := func(state string, after stats) idleRow {
		per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
		return idleRow{
			variant:    v.Name,
			state:      state,
			conns:      n,
			memPerConn: per(after.Heap+after.Stacks, before.Heap+before.Stacks),
			heap:       per(after.Heap, before.Heap),
			stacks:     per(after.Stacks, before.Stacks),
			rssPerConn: per(after.RSS, before.RSS),
			goroutines: float64(after.Goroutines-before.Goroutines) / float64(n),
		}
	}
	return []idleRow{row("handshake", opened), row("one message", talked)}, nil
}

// median returns the median of xs, and their minimum and maximum.
func median(xs []float64) (med, lo, hi float64) {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0, 0, 0
	}
	med = s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return med, s[0], s[len(s)-1]
}

func printCell(w io.Writer, c cell) {
	for _, r := range c.rows {
		x, _, _ := median(r.rateRatios)
		cx, _, _ := median(r.cpuRatios)
		fmt.Fprintf(w, "%6d B x %4d conns  %-8s %9.0f msg/s  %5.2fx  p50 %8v  p99 %8v  cpu %7v/msg %5.2fx  %5.2f allocs/msg\n",
			c.size, c.conns, r.variant, r.rate(), x, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond),
			r.cpuPerMsg().Round(10*time.Nanosecond), cx, r.allocsPerMsg())
	}
}

func sizeName(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/1e3) }

func writeTable(w io.Writer, c config, res results, started time.Time, took time.Duration, load string) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "Generated by `go run ./internal/cmd/load -table README.md` (took %v).\n\n", took.Round(time.Second))
	fmt.Fprintf(w, "- machine: %s, %d CPUs, %s/%s, load average %s at the start and %s at the end\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, load, loadAvg())
	fmt.Fprintf(w, "- Go: %s; date: %s; host: %s\n", runtime.Version(), started.UTC().Format("2006-01-02 15:04 MST"), host)
	fmt.Fprintf(w, "- method: server and client in separate processes on loopback, closed loop; %d rounds per cell, each variant running the same %v-sized share per round in rotated order; the server measures its own CPU time and allocations\n\n", c.rounds, c.runTime)
	fmt.Fprintln(w, "Ratios are against raw coder/websocket, and against gorilla/websocket, in the same round of the same cell, median over the rounds (range in brackets): x coder = variant msg/s / coder msg/s (>= 1 is as fast or faster); CPU x coder = variant server CPU per message / coder's (<= 1 is as cheap or cheaper); x gorilla and CPU x gorilla the same against gorilla. msg/s, latencies, CPU and allocations are totals over all rounds.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| size | conns | variant | x coder | CPU x coder | x gorilla | CPU x gorilla | server allocs/msg | msg/s | p50 us | p99 us | server CPU us/msg |")
	fmt.Fprintln(w, "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	ratio := func(xs []float64) string {
		if len(xs) == 0 {
			return "n/a"
		}
		m, lo, hi := median(xs)
		return fmt.Sprintf("%.2f (%.2f-%.2f)", m, lo, hi)
	}
	for _, cl := range res.cells {
		for _, r := range cl.rows {
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %.2f | %.0f | %s | %s | %s |\n",
				sizeName(cl.size), cl.conns, r.variant, ratio(r.rateRatios), ratio(r.cpuRatios),
				ratio(r.gorillaRate), ratio(r.gorillaCPU), r.allocsPerMsg(), r.rate(),
				us(r.p50), us(r.p99), us(r.cpuPerMsg()))
		}
	}
	if len(res.handshakes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Handshakes in a reconnect storm (%d clients at once, each completing the WebSocket handshake and dropping the connection, cycling through %d known tokens; %d rounds, each variant storming for %s per round in rotated order): "+
			"coder is the bare upgrade, guard adds every default guard, and each algorithm adds auth.Sessions verifying every token in full, or, with -cached, through the verified-token cache. "+
			"x coder = handshakes/s over the bare upgrade's in the same round, median (range); CPU and allocations are the server's, per handshake.\n\n",
			bench.StormWorkers, bench.KnownTokens, c.rounds, c.hsRun)
		fmt.Fprintln(w, "| variant | x coder | CPU x coder | server allocs/handshake | handshakes/s | server CPU us/handshake |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
		for _, r := range res.handshakes {
			x, xlo, xhi := median(r.rateRatios)
			cx, cxlo, cxhi := median(r.cpuRatios)
			fmt.Fprintf(w, "| %s | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) | %.0f | %.0f | %s |\n",
				r.variant, x, xlo, xhi, cx, cxlo, cxhi, r.allocsPerMsg(), r.rate(), us(r.cpuPerMsg()))
		}
	}
	if len(res.idle) > 0 {
		writeIdleTable(w, c, res.idle)
	}
	if len(res.broadcast) > 0 {
		writeBroadcastTable(w, c, res.broadcast)
	}
	if len(res.sealed) > 0 {
		writeSealedTable(w, c, res.sealed)
	}
}

func writeIdleTable(w io.Writer, c config, idle []idleRow) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Idle connections (%d open, after a GC; heap objects + goroutine stacks, and RSS, per connection)", idle[0].conns)
	if c.idleWanted > c.idle {
		fmt.Fprintf(w, ", fewer than the %d asked for: the open-files limit allowed no more", c.idleWanted)
	}
	fmt.Fprint(w, ":\n\n")
	fmt.Fprintln(w, "Each connection is measured twice: quiet right after its handshake, and quiet again after it has sent one message and read its echo; vs gorilla compares the same state.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| variant | quiet after | heap+stack B/conn | vs gorilla | heap B/conn | stack B/conn | RSS B/conn | server goroutines/conn |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	ref := map[string]float64{}
	for _, r := range idle {
		if r.variant == "gorilla" {
			ref[r.state] = r.memPerConn
		}
	}
	for _, r := range idle {
		vs := "n/a"
		if g, ok := ref[r.state]; ok {
			vs = fmt.Sprintf("%.2fx", r.memPerConn/g)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.0f | %.0f | %.0f | %.2f |\n", r.variant, r.state, r.memPerConn, vs, r.heap, r.stacks, r.rssPerConn, r.goroutines)
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

const (
	beginMarker = "<!-- results:begin -->"
	endMarker   = "<!-- results:end -->"
)

// writeResults puts md between the markers of the file at path, keeping
// the hand-written text around them, or writes a new file.
func writeResults(path string, md []byte) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	block := beginMarker + "\n" + string(md) + endMarker + "\n"
	i, j := bytes.Index(old, []byte(beginMarker)), bytes.Index(old, []byte(endMarker))
	var out string
	if i >= 0 && j > i {
		out = string(old[:i]) + block + string(old[j+len(endMarker):])
		out = strings.Replace(out, endMarker+"\n\n", endMarker+"\n", 1)
	} else {
		out = "# wsguard benchmark results\n\n" + block
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
