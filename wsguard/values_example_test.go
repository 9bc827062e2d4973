package wsguard_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/wsguard/kit/wsguard"
	"github.com/wsguard/kit/wsguard/wsguardtest"
)

// A connection remembers what it subscribed to, without a map keyed by
// *Conn; the values go when the connection does.
func ExampleConnValue() {
	subscribed := wsguard.NewConnValue[[]string]() // once, at start-up
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		orders, _ := subscribed.Get(c)
		orders = append(orders, string(m.Data))
		subscribed.Set(c, orders)
		return c.SendText(ctx, "watching "+strings.Join(orders, ", "))
	})
	res, err := wsguardtest.Run(context.Background(), h, []string{"order-1", "order-2"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Join(res.Texts(), "\n"))
	// Output:
	// watching order-1
	// watching order-1, order-2
}
