package validate_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// An HTTP endpoint beside the WebSocket one checks its body with the same
// rules, and answers a mistake with the same error reply.
func ExampleBody() {
	type Status struct {
		Order  string `json:"order" validate:"required,uuid"`
		Status string `json:"status" validate:"required,oneof=paid shipped"`
	}
	v := validate.New()
	mux := http.NewServeMux()
	mux.Handle("POST /orders/status", validate.Body[Status](v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := validate.BodyFrom[Status](r.Context())
		fmt.Fprintf(w, "order %s is %s", s.Order, s.Status)
	})))
	quiet := slog.New(slog.DiscardHandler)
	ts := httptest.NewServer(wsguard.Instrument(quiet, nil)(mux))
	defer ts.Close()

	for _, body := range []string{
		`{"order":"8f14e45f-ceea-467f-a0e6-a1b2c3d4e5f6","status":"paid"}`,
		`{"order":"42","status":"lost"}`,
	} {
		resp, err := http.Post(ts.URL+"/orders/status", "application/json", strings.NewReader(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(b)))
	}
	// Output:
	// 200 order 8f14e45f-ceea-467f-a0e6-a1b2c3d4e5f6 is paid
	// 400 {"type":"error","code":"invalid_argument","fields":[{"field":"order","rule":"uuid"},{"field":"status","rule":"oneof","param":"paid shipped"}]}
}
