//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"sizes", []string{"-sizes", "32, 1024"}, true},
		{"bad size", []string{"-sizes", "0"}, false},
		{"bad conns", []string{"-conns", "x"}, false},
		{"no rounds", []string{"-rounds", "0"}, false},
		{"negative idle", []string{"-idle", "-1"}, false},
		{"no idle, no handshakes", []string{"-idle", "0", "-handshake-run", "0"}, true},
		{"no broadcasts, no sealed messages", []string{"-broadcasts", "0", "-sealed-run", "0"}, true},
		{"negative broadcasts", []string{"-broadcasts", "-1"}, false},
		{"a room of one", []string{"-broadcast-members", "1"}, false},
		{"a room of one, skipped", []string{"-broadcasts", "0", "-broadcast-members", "1"}, true},
		{"no broadcast rounds", []string{"-broadcast-rounds", "0"}, false},
		{"negative sealed run", []string{"-sealed-run", "-1s"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseFlags(tc.args, &bytes.Buffer{})
			if (err == nil) != tc.ok {
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			}
		})
	}
}

func TestWriteResultsKeepsTheNote(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := writeResults(path, []byte("first\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	note := "\n## Where the time goes\n\nprofile\n"
	if err := os.WriteFile(path, append(b, note...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeResults(path, []byte("second\n")); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	got := string(b)
	if strings.Contains(got, "first") || !strings.Contains(got, "second") || !strings.HasSuffix(got, note) {
		t.Fatalf("results file:\n%s", got)
	}
}

// TestDrive runs the smallest measurement against an in-process server,
// and checks that every table asked for is there and parses, and that
// the tables skipped are not.
func TestDrive(t *testing.T) {
	t.Parallel()
	small := []string{"-sizes", "32", "-conns", "2", "-rounds", "2", "-run", "10ms"}
	for _, tc := range []struct {
		name    string
		args    []string
		want    []string
		wantRe  []string
		tables  []table // tables that must parse
		notWant []string
	}{
		{
			name: "every table",
			args: []string{"-idle", "4", "-handshake-run", "10ms", "-broadcasts", "4", "-broadcast-members", "3", "-broadcast-rounds", "2", "-sealed-run", "5ms"},
			want: []string{"| 32 B | 2 | coder |", "| 32 B | 2 | guard |", "| guard |", "| HS256 |", "| EdDSA-cached |", "Idle connections (4 open", "| guard | handshake |", "| guard | one message |",
				"a room of 3 members, in half the cells 1 of them (1%, at least one) silent", "| 1 | 0 | group |", "| 16 | 1 | gorilla-hub |", "| 1 KiB | plain |", "| 32 KiB | sealed-ecdh |"},
			// gorilla is its own reference in the x gorilla columns
			wantRe: []string{`\| 32 B \| 2 \| gorilla \| [^|]+ \| [^|]+ \| 1\.00 \(1\.00-1\.00\) \| 1\.00 \(1\.00-1\.00\) \|`},
			tables: []table{broadcastTable, sealedTable},
		},
		{
			name:    "broadcast and sealed skipped",
			args:    []string{"-idle", "0", "-handshake-run", "0", "-broadcasts", "0", "-sealed-run", "0"},
			want:    []string{"| 32 B | 2 | full |"},
			notWant: []string{"Idle connections", "Handshakes", "Broadcast", "Sealed", broadcastTable.header, sealedTable.header},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			ready := make(chan string, 1)
			pr := &lineWriter{ch: ready}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			served := make(chan error, 1)
			go func() { served <- serve(ctx, "127.0.0.1:0", "", false, 1024, pr) }()
			addr := <-ready
			err := run(ctx, append(append([]string{"-addr", addr}, small...), tc.args...), &out, &out)
			cancel()
			if err := <-served; err != nil {
				t.Error(err)
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			got := out.String()
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q:\n%s", want, got)
				}
			}
			for _, re := range tc.wantRe {
				if !regexp.MustCompile(re).MatchString(got) {
					t.Errorf("output does not match %s:\n%s", re, got)
				}
			}
			for _, notWant := range tc.notWant {
				if strings.Contains(got, notWant) {
					t.Errorf("output has %q:\n%s", notWant, got)
				}
			}
			for _, tb := range tc.tables {
				tb.check(t, got)
			}
		})
	}
}

// table is what a generated table must hold: a row for each variant of
// each cell, every cell of a row as its column says, and the reference
// (each cell's first row) at 1.00 in the ratio column.
type table struct {
	header   string
	rows     int
	columns  []*regexp.Regexp
	ratioCol int
}

var (
	count  = regexp.MustCompile(`^\d+$`)
	number = regexp.MustCompile(`^\d+(\.\d+)?$`)
	ratio  = regexp.MustCompile(`^\d+\.\d\d \(\d+\.\d\d-\d+\.\d\d\)$`)

	broadcastTable = table{
		header:   "| on the way | silent | variant | x group | deliveries/s | readers' p50 ms | readers' p99 ms | sender held p99 ms | sender held max ms | members left |",
		rows:     4 * 3,
		columns:  []*regexp.Regexp{count, count, regexp.MustCompile(`^(group|naive|gorilla-hub)$`), ratio, number, number, number, number, number, regexp.MustCompile(`^\d+(-\d+)?$`)},
		ratioCol: 3,
	}
	sealedTable = table{
		header:   "| size | variant | x plain | round trips/s | p50 us | p99 us | allocs/round trip | B/round trip |",
		rows:     2 * 3,
		columns:  []*regexp.Regexp{regexp.MustCompile(`^(1|32) KiB$`), regexp.MustCompile(`^(plain|sealed-dir|sealed-ecdh)$`), ratio, number, number, number, number, number},
		ratioCol: 2,
	}
)

// check finds the table in out, once, and checks its rows.
func (tb table) check(t *testing.T, out string) {
	t.Helper()
	if n := strings.Count(out, tb.header); n != 1 {
		t.Fatalf("%d tables under %q, want 1", n, tb.header)
	}
	lines := strings.Split(out[strings.Index(out, tb.header):], "\n")
	var rows [][]string
	for _, line := range lines[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	if len(rows) != tb.rows {
		t.Fatalf("%d rows under %q, want %d", len(rows), tb.header, tb.rows)
	}
	for i, row := range rows {
		if len(row) != len(tb.columns) {
			t.Errorf("row %q has %d cells, want %d", row, len(row), len(tb.columns))
			continue
		}
		for j, p := range tb.columns {
			if !p.MatchString(row[j]) {
				t.Errorf("row %q: cell %d, %q, does not match %s", row, j, row[j], p)
			}
		}
		if i%3 == 0 && row[tb.ratioCol] != "1.00 (1.00-1.00)" {
			t.Errorf("reference row %q: ratio is not 1.00", row)
		}
	}
}

type lineWriter struct{ ch chan string }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.ch <- strings.TrimSpace(strings.TrimPrefix(string(p), "listening on "))
	return len(p), nil
}
