// Package prom exports wsguard's events ([wsguard.Observer]) as Prometheus
// metrics. It lives apart from wsguard so that importing the core does not
// pull in the Prometheus client.
//
// Every label comes from a small fixed set (an errlog code name, a close
// status from the protocol's table, a limit's name, an authentication
// failure's public text), so the number of series is bounded whatever the
// clients do; a client's IP and subject are never labels.
//
// The metrics, all prefixed wsguard_:
//
//	connections_open                        gauge
//	handshakes_total{result,code}           counter; result accepted|rejected, code "" when accepted
//	connections_closed_total{code,status}   counter; code "app" when the application closed it
//	messages_total{direction}               counter; in|out
//	message_size_bytes{direction}           histogram
//	handler_duration_seconds                histogram
//	send_queue_length                       histogram; a connection's queue (Conn.Enqueue, Group broadcasts) as a message joins it
//	limited_total{limit}                    counter; message_rate|handshake_rate|conn_cap|subject_conns|send_queue
//	auth_failures_total{reason}             counter; "invalid token", "token expired", ...
//	store_errors_total{use}                 counter; a shared store was unreachable
//
// # Configuration mistakes
//
// As everywhere in this module, a configuration mistake fails at start-up
// and the constructor's signature decides how: [New] and [Listen] return
// an error, so they report every invalid input through it (a nil
// registerer or gatherer, a registry that already holds the metrics, an
// address that cannot be listened on); nothing panics. A nil logger given
// to Listen means slog.Default().
package prom
