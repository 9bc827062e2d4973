// Package redisstore keeps wsguard's shared state in Redis, so that several
// instances behind a load balancer enforce one revocation list, one
// connection cap and one handshake rate instead of one each.
//
// Create one [Store] per process over a go-redis client, then take the
// uses you need from it:
//
//	st := redisstore.New(redis.NewClient(&redis.Options{Addr: addr}),
//		redisstore.WithLogger(logger), redisstore.WithObserver(metrics))
//	rv := st.Revoker()                        // an auth.Revoker
//	stop, err := rv.Subscribe(ctx, func(sub string) { sessions.CloseSubject(sub) })
//	srv := wsguard.New(app,
//		wsguard.WithConnStore(st.Conns()),           // shared caps
//		wsguard.WithHandshakeStore(st.Handshakes())) // shared handshake rate
//
// A cap per subject ([wsguard.SubjectConnLimit]) counts in a key space of
// its own, [Store.SubjectConns], so that a subject's connections are not
// counted a second time in the total of [Store.Conns]:
//
//	lim := wsguard.NewSubjectConnLimit(3, st.SubjectConns())
//
// # When Redis is unreachable
//
// Each use has an explicit [FailMode], set with [WithFailMode]:
//
//   - revocation fails closed by default: a token whose revocation cannot
//     be checked is refused (HTTP 503 at the handshake, close 1013 for an
//     open connection at its periodic check);
//   - connection caps and the handshake rate fail open by default: the
//     request is admitted as if under the limit, and every failure is logged
//     at warn level and reported as a wsguard.EventStoreError
//     (wsguard_store_errors_total with the Prometheus observer).
//
// Every command is bounded by the store's timeout ([WithTimeout]).
package redisstore
