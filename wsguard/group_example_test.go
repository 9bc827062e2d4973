package wsguard_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/wsguard"
)

// A chat room: every connection joins the room when it opens and leaves
// it by itself when it ends; each message is encoded once and queued to
// every other member, so that a member that stops reading holds no one
// up (it is cut with 4429 when its send queue passes the bound).
func ExampleGroup() {
	room := wsguard.NewGroup(nil) // nil: this process only; see store/redisstore for a room across instances
	type said struct {
		Type string `json:"type"`
		From string `json:"from"`
		Text string `json:"text"`
	}
	srv := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		// Broadcast keeps what it is given: encode a fresh value, never
		// m.Data itself, whose buffer is reused after the handler returns.
		return room.BroadcastJSON(ctx, c, said{Type: "said", From: c.RemoteIP(), Text: string(m.Data)})
	}), wsguard.WithConnect(func(_ context.Context, c *wsguard.Conn) error {
		room.Join(c)
		return nil
	}))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	alice, _, _ := websocket.Dial(ctx, url, nil)
	defer alice.CloseNow()
	for room.Len() < 1 { // the connect hook runs on the server's side
		time.Sleep(time.Millisecond)
	}
	bob, _, _ := websocket.Dial(ctx, url, nil)
	defer bob.CloseNow()
	for room.Len() < 2 {
		time.Sleep(time.Millisecond)
	}
	_ = alice.Write(ctx, websocket.MessageText, []byte("hello"))
	_, got, _ := bob.Read(ctx)
	fmt.Println(string(got))
	// Output: {"type":"said","from":"127.0.0.1","text":"hello"}
}
