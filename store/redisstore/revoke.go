package redisstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/auth"
)

// UseRevocation names revocation in logs and wsguard.EventStoreError.
const UseRevocation = "revocation"

// Revoker is an auth.Revoker shared by every instance using the same Redis
// and prefix. Revocations are keys that expire with the token (or, for a
// subject, when its last token does), so Redis holds no more than the
// revocations still in force. A subject's revocation is also announced on
// a pub/sub channel: every instance that called [Revoker.Subscribe] closes
// the subject's connections at once.
//
// A revoked token id (jti) is not announced, as connections are not
// indexed by token: open connections using it close at their next periodic
// check (auth.WithRevoker's interval); new handshakes and refreshes are
// refused at once.
type Revoker struct {
	s   *Store
	cfg useConfig
}

// Revoker returns the store's revocation list. It fails closed unless
// configured otherwise ([WithFailMode]).
func (s *Store) Revoker(opts ...UseOption) *Revoker {
	return &Revoker{s: s, cfg: newUseConfig("Revoker", FailClosed, opts)}
}

func (r *Revoker) tokenKey(id string) string  { return r.s.prefix + "revoked:jti:" + id }
func (r *Revoker) subjectKey(s string) string { return r.s.prefix + "revoked:sub:" + s }
func (r *Revoker) channel() string            { return r.s.prefix + "revoked" }

// Revoked implements auth.Revoker with one EXISTS over the token's and the
// subject's keys. When Redis cannot be reached it returns the error
// (auth.Sessions then refuses) or, failing open, false.
func (r *Revoker) Revoked(ctx context.Context, p *auth.Principal) (bool, error) {
	keys := []string{r.subjectKey(p.Subject)}
	if p.TokenID != "" {
		keys = append(keys, r.tokenKey(p.TokenID))
	}
	cctx, cancel := r.s.ctx(ctx)
	defer cancel()
	n, err := r.s.c.Exists(cctx, keys...).Result()
	if err != nil {
		r.s.failed(ctx, UseRevocation, checked(r.cfg.mode), err)
		if r.cfg.mode == FailOpen {
			return false, nil
		}
		return false, fmt.Errorf("redisstore: revocation check: %w", err)
	}
	return n > 0, nil
}

// RevokeToken revokes the token with the given id (jti) until the given
// time: pass its exp plus the verifier's leeway, after which it is refused
// as expired anyway. A time already past does nothing.
func (r *Revoker) RevokeToken(ctx context.Context, id string, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	cctx, cancel := r.s.ctx(ctx)
	defer cancel()
	if err := r.s.c.Set(cctx, r.tokenKey(id), 1, ttl).Err(); err != nil {
		return fmt.Errorf("redisstore: revoke token: %w", err)
	}
	return nil
}

// RevokeSubject revokes every token of sub until the given time (the
// latest exp, plus leeway, of any token issued to sub so far) and
// announces it, so that subscribed instances close sub's connections.
// Tokens issued to sub later are refused until then too: call
// [Revoker.RestoreSubject] to lift it.
func (r *Revoker) RevokeSubject(ctx context.Context, sub string, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	cctx, cancel := r.s.ctx(ctx)
	defer cancel()
	_, err := r.s.c.TxPipelined(cctx, func(p redis.Pipeliner) error {
		p.Set(cctx, r.subjectKey(sub), 1, ttl)
		p.Publish(cctx, r.channel(), sub)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: revoke subject: %w", err)
	}
	return nil
}

// RestoreSubject undoes [Revoker.RevokeSubject].
func (r *Revoker) RestoreSubject(ctx context.Context, sub string) error {
	cctx, cancel := r.s.ctx(ctx)
	defer cancel()
	if err := r.s.c.Del(cctx, r.subjectKey(sub)).Err(); err != nil {
		return fmt.Errorf("redisstore: restore subject: %w", err)
	}
	return nil
}

// Subscribe calls onSubject(sub), on a goroutine of its own, for every
// subject revoked by any instance from now on, until stop is called; wire
// it to auth.Sessions.CloseSubject. It returns once the subscription is
// in place. stop waits for the calls in progress.
//
// The client reconnects and resubscribes by itself after a failure;
// announcements made meanwhile are lost, and the periodic revocation check
// catches those connections instead.
func (r *Revoker) Subscribe(ctx context.Context, onSubject func(sub string)) (stop func(), err error) {
	ps := r.s.c.Subscribe(ctx, r.channel())
	cctx, cancel := r.s.ctx(ctx)
	defer cancel()
	if _, err := ps.Receive(cctx); err != nil { // the subscription's confirmation
		_ = ps.Close()
		return nil, fmt.Errorf("redisstore: subscribe: %w", err)
	}
	var calls sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ps.Channel() {
			calls.Go(func() { onSubject(m.Payload) })
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = ps.Close()
			<-done
			calls.Wait()
		})
	}, nil
}
