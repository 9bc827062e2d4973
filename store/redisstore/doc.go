// Package redisstore keeps wsguard's shared state in Redis, so that several
// instances behind a load balancer enforce one revocation list, one
// connection cap and one handshake rate instead of one each, and
// broadcast to groups whose members are spread over them.
//
// Create one [Store] per process over a go-redis client, then take the
// uses you need from it:
//
//	st := redisstore.New(redis.NewClient(&redis.Options{Addr: addr}))
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
// A wsguard.Group that spans the instances comes from [Store.Groups]: one
// pub/sub channel per group, each broadcast published once and encoded
// once per instance, delivered by each instance to its own members:
//
//	groups := st.Groups()
//	room, err := groups.Group(ctx, "lobby") // a *wsguard.Group
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
//     (wsguard_store_errors_total with the Prometheus observer);
//   - group broadcasts have one fail mode: members on the broadcasting
//     instance get the message, the other instances miss it, with the
//     same warn line and event (use "group"); the subscription comes back
//     by itself when Redis does, without replaying what was missed.
//
// Every command is bounded by the store's timeout ([WithTimeout]). A
// Store has no logger or observer of its own: a failure is logged to, and
// reported to, those of the wsguard server the call served
// (wsguard.LoggerFrom, wsguard.ObserverFrom); a lease's release or
// refresh, after its request, to those of the server that took it.
//
// # Configuration mistakes
//
// As everywhere in this module, a configuration mistake fails at start-up,
// and the constructor's signature decides how: [New] and the uses
// ([Store.Revoker], [Store.Conns], [Store.Handshakes]) return no error, so
// they panic on an invalid argument or option, with a message naming it
// and its value ("redisstore: WithTimeout(0s): must be > 0"). Zero is
// refused for every duration, and so is an option a use would ignore
// ([WithLeaseTTL] given to anything but Store.Conns).
package redisstore
