package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/wsguard"
)

// UseHandshakeRate names the shared handshake rate in logs and events.
const UseHandshakeRate = wsguard.LimitHandshakeRate

// bucketScript is a token bucket in one atomic step: KEYS[1] a hash of the
// tokens left and when they were counted (the server's time, in
// microseconds); ARGV the rate per second and the burst. It returns 0 when
// a token was taken, else the microseconds until one is there. The key
// expires once the bucket would be full again, as a full bucket is the
// same as none.
var bucketScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
	tokens = burst
	ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) / 1000000 * rate)
local wait = 0
if tokens >= 1 then
	tokens = tokens - 1
else
	wait = math.ceil((1 - tokens) / rate * 1000000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return wait
`)

// Handshakes is a wsguard.HandshakeStore: per-client handshake rates shared by
// every instance using the same Redis and prefix, each an atomic token
// bucket in one script call, so that N instances enforce one limit. It
// fails open by default.
type Handshakes struct {
	s   *Store
	cfg useConfig
}

// Handshakes returns the store's shared handshake rate.
func (s *Store) Handshakes(opts ...UseOption) *Handshakes {
	return &Handshakes{s: s, cfg: newUseConfig("Handshakes", FailOpen, opts)}
}

// AllowHandshake implements wsguard.HandshakeStore.
func (h *Handshakes) AllowHandshake(ctx context.Context, client string, perSecond float64, burst int) (time.Duration, error) {
	cctx, cancel := h.s.ctx(ctx)
	defer cancel()
	us, err := bucketScript.Run(cctx, h.s.c, []string{h.s.prefix + "handshakes:" + client},
		strconv.FormatFloat(perSecond, 'g', -1, 64), burst).Int64()
	if err != nil {
		h.s.failed(ctx, UseHandshakeRate, checked(h.cfg.mode), err)
		if h.cfg.mode == FailOpen {
			return 0, nil
		}
		return 0, fmt.Errorf("redisstore: %w", err)
	}
	return time.Duration(us) * time.Microsecond, nil
}
