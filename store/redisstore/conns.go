package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/wsguard"
)

// DefaultLeaseTTL is how long a connection's lease outlives its last
// refresh: the time a crashed instance's connections keep counting.
const DefaultLeaseTTL = 30 * time.Second

// maxRefreshBatch bounds the leases refreshed by one script call.
const maxRefreshBatch = 1000

// acquireScript takes a lease for one connection under both caps, or
// reports which is full: 0 taken, 1 client full, 2 total full. Leases are
// sorted-set members scored by their expiry in the server's time, so that
// the instances' clocks do not matter and a lease not refreshed drops out.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 2 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 0
`)

// refreshScript extends live leases: KEYS[1] the total set, KEYS[i+1] the
// client set of the lease ARGV[i+1]; ARGV[1] the TTL. XX: a lease released
// meanwhile is not brought back.
var refreshScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
	redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
	redis.call('ZADD', KEYS[i], 'XX', now + ttl, ARGV[i])
	redis.call('PEXPIRE', KEYS[i], ttl)
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 0
`)

// Conns is a wsguard.ConnStore: connection counts shared by every instance
// using the same Redis and prefix, kept as leases with a TTL that this
// process refreshes while the connection lives, so that the counts of a
// crashed instance expire by themselves after the lease TTL. It fails open
// by default. Refreshes run on a timer only while leases are held: no
// goroutine is left behind.
//
// The counts of [Store.Conns] (clients are IP addresses) and of
// [Store.SubjectConns] (clients are subjects) are apart: a connection
// counted by both is one connection in each total, and a subject named
// like an address is not that address.
type Conns struct {
	s        *Store
	cfg      useConfig
	scope    string // the hash tag of the keys: "{conns}" or "{subjects}"
	use      string // in logs and store error events
	ttl      time.Duration
	instance string // prefix of this process's lease ids
	next     atomic.Uint64

	mu     sync.Mutex
	leases map[string]lease // by lease id
	timer  *time.Timer      // nil when no lease is held
}

// lease is a held connection slot.
type lease struct {
	client string
	// ctx is the acquiring request's, without its cancellation: a failed
	// release or refresh, which runs after the request, is logged to the
	// logger and observer of the server that took the lease.
	ctx context.Context
}

// Conns returns the store's shared connection counts per client IP and in
// all, for wsguard.WithConnStore, with leases of [DefaultLeaseTTL] (see
// [WithLeaseTTL]).
func (s *Store) Conns(opts ...UseOption) *Conns {
	return s.conns("{conns}", UseConnCap, opts)
}

// SubjectConns returns the store's shared connection counts per
// authenticated subject, for wsguard.NewSubjectConnLimit: a key space of
// their own beside [Store.Conns], so that one Store serves both caps. Its
// leases, fail mode and options are those of [Store.Conns]; its failures
// are logged and reported as [UseSubjectConns].
func (s *Store) SubjectConns(opts ...UseOption) *Conns {
	return s.conns("{subjects}", UseSubjectConns, opts)
}

func (s *Store) conns(scope, use string, opts []UseOption) *Conns {
	var b [8]byte
	_, _ = rand.Read(b[:])
	method := "Conns"
	if use == UseSubjectConns {
		method = "SubjectConns"
	}
	cfg := newUseConfig(method, FailOpen, opts)
	ttl := cfg.leaseTTL
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	return &Conns{s: s, cfg: cfg, scope: scope, use: use, ttl: ttl,
		instance: hex.EncodeToString(b[:]), leases: make(map[string]lease)}
}

// minLeaseTTL keeps a third of the TTL, the refresh period, at a
// millisecond or more, Redis's unit for it.
const minLeaseTTL = 3 * time.Millisecond

// WithLeaseTTL sets how long a connection's lease lasts without a refresh;
// it is refreshed every third of it. It must be at least 3ms, and it is
// for [Store.Conns] only: the other uses refuse it.
func WithLeaseTTL(d time.Duration) UseOption {
	return func(c *useConfig) {
		if d < minLeaseTTL {
			misconfigured(fmt.Sprintf("WithLeaseTTL(%v)", d), "must be >= 3ms")
		}
		c.leaseTTL = d
	}
}

// The keys share the scope's hash tag, so that a script touching both is
// served by one Redis Cluster node.
func (c *Conns) totalKey() string          { return c.s.prefix + c.scope + ":total" }
func (c *Conns) clientKey(k string) string { return c.s.prefix + c.scope + ":client:" + k }

// UseConnCap and UseSubjectConns name the shared connection caps in logs
// and events.
const (
	UseConnCap      = wsguard.LimitConnCap
	UseSubjectConns = wsguard.LimitSubjectConns
)

// AcquireConn implements wsguard.ConnStore with one script call.
func (c *Conns) AcquireConn(ctx context.Context, client string, maxTotal, maxClient int) (func(), error) {
	id := c.instance + "-" + strconv.FormatUint(c.next.Add(1), 36)
	cctx, cancel := c.s.ctx(ctx)
	defer cancel()
	res, err := acquireScript.Run(cctx, c.s.c, []string{c.totalKey(), c.clientKey(client)},
		c.ttl.Milliseconds(), maxTotal, maxClient, id).Int()
	if err != nil {
		c.s.failed(ctx, c.use, checked(c.cfg.mode), err)
		if c.cfg.mode == FailOpen {
			return func() {}, nil
		}
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	switch res {
	case 1:
		return nil, fmt.Errorf("redisstore: client %s: %w (%d)", client, wsguard.ErrClientCap, maxClient)
	case 2:
		return nil, fmt.Errorf("redisstore: %w (%d)", wsguard.ErrTotalCap, maxTotal)
	}
	c.mu.Lock()
	c.leases[id] = lease{client: client, ctx: context.WithoutCancel(ctx)}
	if c.timer == nil {
		c.timer = time.AfterFunc(c.ttl/3, c.refresh)
	}
	c.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { c.release(id) }) }, nil
}

// Open returns the number of leases this process holds.
func (c *Conns) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.leases)
}

func (c *Conns) release(id string) {
	c.mu.Lock()
	l := c.leases[id]
	delete(c.leases, id)
	c.mu.Unlock()
	ctx, cancel := c.s.ctx(l.ctx)
	defer cancel()
	_, err := c.s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, c.totalKey(), id)
		p.ZRem(ctx, c.clientKey(l.client), id)
		return nil
	})
	if err != nil {
		c.s.failed(ctx, c.use, actionNotFreed, err)
	}
}

// refresh runs on the timer: it extends every lease held and runs again
// after a third of the TTL, as long as leases are held.
func (c *Conns) refresh() {
	c.mu.Lock()
	ids := make([]string, 0, len(c.leases))
	clients := make([]string, 0, len(c.leases))
	var lctx context.Context // of some lease: their servers are one, as a rule
	for id, l := range c.leases {
		ids = append(ids, id)
		clients = append(clients, l.client)
		lctx = l.ctx
	}
	c.mu.Unlock()
	for len(ids) > 0 {
		n := min(len(ids), maxRefreshBatch)
		keys := make([]string, 0, n+1)
		args := make([]any, 0, n+1)
		keys = append(keys, c.totalKey())
		args = append(args, c.ttl.Milliseconds())
		for i := range n {
			keys = append(keys, c.clientKey(clients[i]))
			args = append(args, ids[i])
		}
		ctx, cancel := c.s.ctx(lctx)
		if err := refreshScript.Run(ctx, c.s.c, keys, args...).Err(); err != nil {
			c.s.failed(ctx, c.use, actionNotRefreshed, err)
		}
		cancel()
		ids, clients = ids[n:], clients[n:]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.leases) == 0 {
		c.timer = nil
		return
	}
	c.timer.Reset(c.ttl / 3)
}
