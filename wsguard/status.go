package wsguard

import "github.com/coder/websocket"

// StatusCode is a WebSocket close status, as [Conn.Close] takes it. It is
// the transport's own type under this package's name, so that a service
// closes a connection without importing the transport.
type StatusCode = websocket.StatusCode

// Close statuses an application may close with. The codes this package
// closes with for an error (4401, 4429, ...) come from the error's code:
// use [Conn.CloseWithError] for those.
const (
	StatusNormalClosure   StatusCode = websocket.StatusNormalClosure
	StatusGoingAway       StatusCode = websocket.StatusGoingAway
	StatusPolicyViolation StatusCode = websocket.StatusPolicyViolation
	StatusTryAgainLater   StatusCode = websocket.StatusTryAgainLater
)
