// Package redistest starts a private redis-server for a test.
//
// A test that needs Redis calls [Start]. When redis-server is not on PATH
// the test is skipped with a message saying so, unless the environment
// sets WSGUARD_REDIS_REQUIRED=1 (as CI does), in which case it fails.
// Each call starts its own server on a Unix socket in a fresh directory,
// without persistence, so tests run in parallel and can stop their server
// mid-test ([Server.Stop]) to show what happens when Redis is unreachable.
package redistest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RequiredEnv names the environment variable that turns a missing
// redis-server from a skip into a failure.
const RequiredEnv = "WSGUARD_REDIS_REQUIRED"

// Server is a running redis-server.
type Server struct {
	// Addr is the Unix socket path, for redis.Options.Addr with Network "unix".
	Addr string

	cmd  *exec.Cmd
	once sync.Once
	done chan struct{}
}

// Start starts a redis-server for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequiredEnv) == "1" {
			t.Fatalf("redis-server not found on PATH and %s=1: %v", RequiredEnv, err)
		}
		t.Skipf("skipping: redis-server not found on PATH (apt-get install redis-server, or set %s=1 to make this a failure)", RequiredEnv)
	}
	// Unix socket paths are limited to about 100 bytes: t.TempDir can be
	// longer.
	dir, err := os.MkdirTemp("", "wsg-redis")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
	// redis-server's own lines are shown only when it fails to answer.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	s := &Server{Addr: sock, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.Stop)

	c := s.Client()
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatalf("redis-server did not answer on %s: %v\n%s", sock, err, out.Bytes())
		}
	}
}

// Client returns a new client of s, with short timeouts so that a stopped
// server is noticed quickly. The caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{
		Network:      "unix",
		Addr:         s.Addr,
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		MaxRetries:   1,
	})
}

// Stop kills the server and waits for it to exit. It is safe to call more
// than once.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}
