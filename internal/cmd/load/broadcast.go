//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/wsguard/kit/internal/bench"
)

// fanoutRow is one broadcast variant's totals in one cell.
type fanoutRow struct {
	variant        string
	deliveries     int
	wall           time.Duration
	p50, p99       time.Duration // readers' delivery times
	heldP99, held  time.Duration // how long a broadcast call held the sender: p99, longest
	left           []int         // the room's size after each round's run
	deliveryRatios []float64     // per round, against the group's run of the same round
}

func (r fanoutRow) rate() float64 { return float64(r.deliveries) / r.wall.Seconds() }

type fanoutCell struct {
	window, silent int
	rows           []fanoutRow
}

// measureBroadcasts runs every broadcast cell: one or several broadcasts
// on their way, with no silent member and with 1%.
func measureBroadcasts(ctx context.Context, c config, stdout io.Writer) ([]fanoutCell, error) {
	var cells []fanoutCell
	for _, window := range bench.FanoutWindows {
		for _, silent := range []int{0, bench.SilentMembers(c.bcMembers)} {
			cl, err := measureBroadcast(ctx, c, window, silent)
			if err != nil {
				return nil, fmt.Errorf("%d on the way, %d silent: %w", window, silent, err)
			}
			printBroadcast(stdout, c.bcMembers, cl)
			cells = append(cells, cl)
		}
	}
	return cells, nil
}

// measureBroadcast runs one cell: a room of every variant, each making
// the same broadcasts per round, the order rotated each round. Before
// each run the silent members are replaced by new ones, so that every
// run meets members that have not been cut yet.
func measureBroadcast(ctx context.Context, c config, window, silent int) (fanoutCell, error) {
	variants := bench.RoomVariants()
	readers := c.bcMembers - silent
	servers := make([]*bench.RoomServer, len(variants))
	fans := make([]*bench.Fanout, len(variants))
	defer func() {
		for i := range variants {
			if fans[i] != nil {
				fans[i].Close()
			}
			if servers[i] != nil {
				servers[i].Close()
			}
		}
	}()
	for i, v := range variants {
		servers[i] = bench.ServeRoom(v)
		f, err := bench.OpenFanout(servers[i].Room, servers[i].URL, readers, silent, window)
		if err != nil {
			return fanoutCell{}, fmt.Errorf("%s: %w", v.Name, err)
		}
		fans[i] = f
		// Warm up: the writers' goroutines and buffers, the readers'.
		if _, err := f.Run(servers[i].Room.Broadcast, 2*window); err != nil {
			return fanoutCell{}, fmt.Errorf("%s: warm-up: %w", v.Name, err)
		}
		f.ResetLatency()
	}
	runtime.GC()
	rows := make([]fanoutRow, len(variants))
	wall := make([]time.Duration, len(variants))
	for r := range c.bcRounds {
		for k := range variants {
			i := (k + r) % len(variants)
			if ctx.Err() != nil {
				return fanoutCell{}, ctx.Err()
			}
			if silent > 0 {
				if err := fans[i].ReplaceSilent(); err != nil {
					return fanoutCell{}, fmt.Errorf("%s: %w", variants[i].Name, err)
				}
			}
			d, err := fans[i].Run(servers[i].Room.Broadcast, c.broadcasts)
			if err != nil {
				return fanoutCell{}, fmt.Errorf("%s: %w", variants[i].Name, err)
			}
			wall[i] = d
			rows[i].deliveries += c.broadcasts * readers
			rows[i].wall += d
			rows[i].left = append(rows[i].left, servers[i].Room.Len())
		}
		for i := range rows {
			rows[i].deliveryRatios = append(rows[i].deliveryRatios, wall[0].Seconds()/wall[i].Seconds())
		}
	}
	for i, v := range variants {
		rows[i].variant = v.Name
		rows[i].p50, rows[i].p99 = fans[i].Latency()
		rows[i].heldP99, rows[i].held = fans[i].Held()
	}
	return fanoutCell{window: window, silent: silent, rows: rows}, nil
}

// leftRange is the room's size after the runs: one number when every
// round left the same, else the smallest and the largest.
func leftRange(left []int) string {
	lo, hi := slices.Min(left), slices.Max(left)
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1e3) }

func printBroadcast(w io.Writer, members int, cl fanoutCell) {
	for _, r := range cl.rows {
		x, _, _ := median(r.deliveryRatios)
		fmt.Fprintf(w, "broadcast  %4d members  %2d on the way  %2d silent  %-11s %9.0f deliveries/s  %5.2fx  p50 %7sms  p99 %7sms  held p99 %7sms  max %7sms  left %s\n",
			members, cl.window, cl.silent, r.variant, r.rate(), x, ms(r.p50), ms(r.p99), ms(r.heldP99), ms(r.held), leftRange(r.left))
	}
}

func writeBroadcastTable(w io.Writer, c config, cells []fanoutCell) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Broadcast of %d B messages to a room of %d members, in half the cells %d of them (1%%, at least one) silent: never reading, with a small receive buffer. "+
		"Measured in the load command's own process, room and members together as in BenchmarkBroadcast; the room's sockets have a fixed %d KiB send buffer. "+
		"%d rounds, each variant making the same %d broadcasts per round in rotated order, one or 16 on their way at once; the silent members are replaced by new ones before every run. "+
		"group is wsguard.Group (send queue bound %d KiB / %d messages for the run), naive a loop of Conn.Send over the members (write timeout %v), gorilla-hub gorilla/websocket's chat example hub. "+
		"x group = deliveries/s over group's in the same round, median (range); deliveries/s, the readers' delivery times and how long one broadcast call held the sender are totals over the rounds; members left is the room's size after each run (the range when the rounds differ).\n\n",
		bench.FanoutSize, c.bcMembers, bench.SilentMembers(c.bcMembers), bench.RoomSendBuffer>>10, c.bcRounds, c.broadcasts,
		bench.FanoutQueueBytes>>10, bench.FanoutQueueMessages, bench.NaiveWriteTimeout)
	fmt.Fprintln(w, "| on the way | silent | variant | x group | deliveries/s | readers' p50 ms | readers' p99 ms | sender held p99 ms | sender held max ms | members left |")
	fmt.Fprintln(w, "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, cl := range cells {
		for _, r := range cl.rows {
			x, lo, hi := median(r.deliveryRatios)
			fmt.Fprintf(w, "| %d | %d | %s | %.2f (%.2f-%.2f) | %.0f | %s | %s | %s | %s | %s |\n",
				cl.window, cl.silent, r.variant, x, lo, hi, r.rate(), ms(r.p50), ms(r.p99), ms(r.heldP99), ms(r.held), leftRange(r.left))
		}
	}
}
