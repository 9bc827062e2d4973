package wsguardtest_test

import (
	"context"
	"fmt"

	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
	"github.com/wsguard/kit/wsguard/wsguardtest"
)

// A unit test of a Router: the messages in, the replies and the close out.
func ExampleRun() {
	type Subscribe struct {
		Order string `json:"order" validate:"required,uuid"`
	}
	r := validate.NewRouter(validate.New())
	validate.Handle(r, "subscribe", func(ctx context.Context, c *wsguard.Conn, m Subscribe) error {
		return c.SendText(ctx, "subscribed to "+m.Order)
	})

	res, err := wsguardtest.Run(context.Background(), r, []string{
		`{"type":"subscribe","order":"8f14e45f-ceea-467f-a0e6-a1b2c3d4e5f6"}`,
		`{"type":"subscribe","order":"42","id":"s2"}`,
		`{"type":"unsubscribe"}`,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range res.Texts() {
		fmt.Println(s)
	}
	fmt.Println(res.Status, res.ClosedByServer)
	// Output:
	// subscribed to 8f14e45f-ceea-467f-a0e6-a1b2c3d4e5f6
	// {"type":"error","code":"invalid_argument","fields":[{"field":"order","rule":"uuid"}],"id":"s2"}
	// StatusUnsupportedData true
}
