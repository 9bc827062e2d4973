package bench_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/wsguard/kit/internal/bench"
)

func openRoom(tb testing.TB, v bench.RoomVariant, readers, silent, window int) (bench.Room, *bench.Fanout) {
	tb.Helper()
	if err := bench.RaiseFileLimit(uint64(4*(readers+silent) + 256)); err != nil {
		tb.Skipf("%v (raise ulimit -n)", err)
	}
	srv := bench.ServeRoom(v)
	f, err := bench.OpenFanout(srv.Room, srv.URL, readers, silent, window)
	if err != nil {
		srv.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		f.Close()
		srv.Close()
	})
	return srv.Room, f
}

// TestRoomVariants checks that every broadcast variant delivers every
// message to its readers beside a member that does not read, so that a
// broken variant fails here rather than skewing a ratio; and that the
// silent member can be replaced between runs, whose deliveries and
// broadcast calls add up until reset.
func TestRoomVariants(t *testing.T) {
	t.Parallel()
	const readers, silent, n = 8, 1, 12
	for _, v := range bench.RoomVariants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			room, f := openRoom(t, v, readers, silent, 4)
			if _, err := f.Run(room.Broadcast, n); err != nil {
				t.Fatal(err)
			}
			if err := f.ReplaceSilent(); err != nil {
				t.Fatal(err)
			}
			if got := room.Len(); got != readers+silent {
				t.Fatalf("%d members after replacing the silent one, want %d", got, readers+silent)
			}
			if _, err := f.Run(room.Broadcast, n); err != nil {
				t.Fatal(err)
			}
			if p50, p99 := f.Latency(); p50 <= 0 || p99 < p50 {
				t.Errorf("readers' latency p50 %v, p99 %v", p50, p99)
			}
			if p99, longest := f.Held(); p99 <= 0 || longest < p99 {
				t.Errorf("sender held p99 %v, max %v", p99, longest)
			}
			f.ResetLatency()
			p50, p99 := f.Latency()
			held, longest := f.Held()
			if p50 != 0 || p99 != 0 || held != 0 || longest != 0 {
				t.Errorf("after a reset: latency %v/%v, held %v/%v", p50, p99, held, longest)
			}
		})
	}
}

// BenchmarkBroadcast broadcasts one 128 B message at a time to a room of
// 1,000 members, with every member reading and with 1% of them never
// reading (a small receive buffer, nothing read), for each variant side
// by side: wsguard.Group, the naive loop of synchronous Sends, and
// gorilla's chat hub. One op is one broadcast; up to window are on their
// way at once, one or 16. msgs/s counts deliveries to readers; p99-us is
// the readers' delivery latency; p99-broadcast-us and max-broadcast-us
// are how long one broadcast call held the sender (with the clients in
// the same process on two CPUs, the sender also waits its turn to run);
// members-left is the room's size after the run (the silent members cut
// or not).
func BenchmarkBroadcast(b *testing.B) {
	const members = 1000
	for _, window := range bench.FanoutWindows {
		for _, silent := range []int{0, bench.SilentMembers(members)} {
			for _, v := range bench.RoomVariants() {
				b.Run(fmt.Sprintf("window=%d/silent=%d/%s", window, silent, v.Name), func(b *testing.B) {
					benchBroadcast(b, v, members, silent, window)
				})
			}
		}
	}
}

func benchBroadcast(b *testing.B, v bench.RoomVariant, members, silent, window int) {
	room, f := openRoom(b, v, members-silent, silent, window)
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	took, err := f.Run(room.Broadcast, b.N)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	p50, p99 := f.Latency()
	held, longest := f.Held()
	b.ReportMetric(float64(b.N*f.Readers())/took.Seconds(), "msgs/s")
	b.ReportMetric(float64(p50.Microseconds()), "p50-us")
	b.ReportMetric(float64(p99.Microseconds()), "p99-us")
	b.ReportMetric(float64(held.Microseconds()), "p99-broadcast-us")
	b.ReportMetric(float64(longest.Microseconds()), "max-broadcast-us")
	b.ReportMetric(float64(room.Len()), "members-left")
}
