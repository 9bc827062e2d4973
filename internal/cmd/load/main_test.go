//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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

// TestDrive runs the smallest measurement against an in-process server.
func TestDrive(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	ready := make(chan string, 1)
	pr := &lineWriter{ch: ready}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serve(ctx, "127.0.0.1:0", "", false, 1024, pr) }()
	addr := <-ready
	err := run(ctx, []string{"-addr", addr, "-sizes", "32", "-conns", "2", "-rounds", "1", "-run", "10ms", "-idle", "4", "-handshake-run", "10ms"}, &out, &out)
	cancel()
	if err := <-served; err != nil {
		t.Error(err)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"| 32 B | 2 | coder |", "| 32 B | 2 | guard |", "| guard |", "| HS256 |", "| EdDSA-cached |", "Idle connections (4 open"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

type lineWriter struct{ ch chan string }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.ch <- strings.TrimSpace(strings.TrimPrefix(string(p), "listening on "))
	return len(p), nil
}
