//go:build unix

// Command load drives the closed-loop echo benchmark across processes: a
// server process serves every variant of internal/bench (raw
// coder/websocket, raw gorilla/websocket, the guarded echo, the full
// stack) and this process loads them in turn, interleaved in rounds, so
// that every figure is a ratio against raw coder/websocket measured at the
// same moment. The server reports its own CPU time, allocations and
// memory, so the client's cost is not counted. It runs on Unix systems
// (CPU time from getrusage; RSS from /proc, on Linux only).
//
// The broadcast table (wsguard.Group against a loop of Sends and
// gorilla's chat hub) and the sealed-message table (plain against sealed
// round trips) are measured in this process, server and clients
// together, as their benchmarks do, in interleaved rounds against their
// own reference: -broadcasts 0 and -sealed-run 0 skip them, as
// -handshake-run 0 and -idle 0 skip the handshake storm and the idle
// connections.
//
// Regenerate the results table (about four minutes on two cores):
//
//	go run ./internal/cmd/load -table README.md
//
// By default the server is a child process on loopback. To load a server
// on another machine, run it there with
//
//	go run ./internal/cmd/load -serve -addr 0.0.0.0:9000
//
// and point the client at it with -addr host:9000.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type config struct {
	serve      bool
	child      bool
	addr       string
	table      string
	sizes      []int
	conns      []int
	variants   []string
	runTime    time.Duration
	rounds     int
	idle       int
	idleWanted int // before fitIdle
	hsRun      time.Duration
	broadcasts int
	bcMembers  int
	bcRounds   int
	sealedRun  time.Duration
	cpuprofile string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.serve, "serve", false, "only serve the variants on -addr")
	fs.BoolVar(&c.child, "child", false, "serve until stdin closes (used by the parent process)")
	fs.StringVar(&c.addr, "addr", "", "server address; empty starts a server child process on loopback")
	fs.StringVar(&c.table, "table", "", "also write the results as Markdown to this file, between its results markers when it has them")
	sizes := fs.String("sizes", "32,1024,32768", "message sizes in bytes")
	conns := fs.String("conns", "1,64,1000", "connection counts")
	variants := fs.String("variants", "", "variants to run, comma-separated (default: all in this build)")
	fs.DurationVar(&c.runTime, "run", 250*time.Millisecond, "length of one variant's run in one round (at least 5 messages per connection)")
	fs.IntVar(&c.rounds, "rounds", 6, "rounds of interleaved runs per cell of the echo, handshake and sealed-message tables")
	fs.IntVar(&c.idle, "idle", 10000, "connections for the idle memory measurement (0 skips it); fewer, with a warning, when the open-files limit cannot be raised for them")
	fs.DurationVar(&c.hsRun, "handshake-run", time.Second, "length of one handshake variant's run in one round of the reconnect storm (0 skips it)")
	fs.IntVar(&c.broadcasts, "broadcasts", 400, "broadcasts of one broadcast variant in one round, enough for every variant to let the silent members go (about 350) (0 skips the broadcast table)")
	fs.IntVar(&c.bcMembers, "broadcast-members", 100, "members of the broadcast room, 1% of them (at least one) silent in half the cells")
	fs.IntVar(&c.bcRounds, "broadcast-rounds", 3, "rounds of interleaved runs per broadcast cell")
	fs.DurationVar(&c.sealedRun, "sealed-run", 200*time.Millisecond, "length of one sealed variant's run in one round (0 skips the sealed table)")
	fs.StringVar(&c.cpuprofile, "server-cpuprofile", "", "write the server process's CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.sizes, err = ints(*sizes); err != nil {
		return c, fmt.Errorf("-sizes: %w", err)
	}
	if c.conns, err = ints(*conns); err != nil {
		return c, fmt.Errorf("-conns: %w", err)
	}
	if *variants != "" {
		c.variants = strings.Split(*variants, ",")
	}
	if c.rounds < 1 {
		return c, errors.New("-rounds must be at least 1")
	}
	if c.idle < 0 {
		return c, errors.New("-idle must not be negative")
	}
	if c.broadcasts < 0 {
		return c, errors.New("-broadcasts must not be negative")
	}
	if c.broadcasts > 0 && c.bcMembers < 2 {
		return c, errors.New("-broadcast-members must be at least 2: a reader and a silent member")
	}
	if c.bcRounds < 1 {
		return c, errors.New("-broadcast-rounds must be at least 1")
	}
	if c.sealedRun < 0 {
		return c, errors.New("-sealed-run must not be negative")
	}
	return c, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if c.serve || c.child {
		addr := c.addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		return serve(ctx, addr, c.cpuprofile, c.child, filesFor(c), stdout)
	}
	return drive(ctx, c, stdout, stderr)
}
