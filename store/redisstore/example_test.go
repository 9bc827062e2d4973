package redisstore_test

import (
	"context"
	"log"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/store/redisstore"
	"github.com/wsguard/kit/wsguard"
)

// Every instance behind the load balancer runs the same set-up against
// the same Redis; together they enforce one revocation list, one cap and
// one handshake rate.
func Example() {
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rc.Close()
	st := redisstore.New(rc)

	v, err := auth.NewVerifier(jwa.HS256(), []byte("example-secret-of-32-bytes-long!"))
	if err != nil {
		log.Fatal(err)
	}
	rv := st.Revoker() // fails closed
	sessions := auth.NewSessions(v, auth.WithRevoker(rv, time.Minute))
	srv := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, m.Type, m.Data)
	}), append(sessions.Options(),
		wsguard.WithConnStore(st.Conns()),           // fails open
		wsguard.WithHandshakeStore(st.Handshakes()), // fails open
	)...)
	_ = srv

	// Close revoked subjects' connections on this instance, whichever
	// instance revoked them.
	stop, err := rv.Subscribe(ctx, func(sub string) { sessions.CloseSubject(sub) })
	if err != nil {
		log.Print(err) // Redis unreachable at start
		return
	}
	defer stop()

	// On any instance, or in an admin tool:
	_ = rv.RevokeSubject(ctx, "alice", time.Now().Add(time.Hour))
}

// A chat room that spans every instance sharing the Redis: members join
// the room on their own instance, and a broadcast reaches the members of
// all of them. With Redis down, members on the sender's instance still
// get it.
func ExampleGroups() {
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rc.Close()
	groups := redisstore.New(rc).Groups()
	defer groups.Close()

	room, err := groups.Group(context.Background(), "lobby")
	if err != nil {
		log.Print(err) // the room serves this instance until Redis is back
	}
	srv := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		// ctx carries the server's logger and observer, which a failed
		// publish is logged and reported to.
		_ = room.BroadcastJSON(ctx, c, map[string]string{"type": "said", "text": string(m.Data)})
		return nil
	}), wsguard.WithConnect(func(_ context.Context, c *wsguard.Conn) error {
		room.Join(c) // left when the connection ends
		return nil
	}))
	_ = srv
}
