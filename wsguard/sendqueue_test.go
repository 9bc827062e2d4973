package wsguard

import (
	"bytes"
	"net"
	"testing"
)

// countingConn records each write that reaches the socket.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// TestBatchWriterGathers checks what the writer's batches save: the
// messages of a batch reach the socket in one write (several when they
// pass maxBatch), in order.
func TestBatchWriterGathers(t *testing.T) {
	t.Parallel()
	small := bytes.Repeat([]byte("s"), 100)
	big := bytes.Repeat([]byte("b"), maxBatch-100)
	tests := []struct {
		name   string
		batch  [][]byte
		writes int
	}{
		{"one message is written through", [][]byte{small}, 1},
		{"ten messages, one write", [][]byte{small, small, small, small, small, small, small, small, small, small}, 1},
		{"past the batch size, a write per full batch", [][]byte{small, big, small}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nc := &countingConn{}
			w := &batchWriter{nc: nc}
			var want []byte
			if len(tt.batch) > 1 {
				w.gather()
			}
			for i, p := range tt.batch {
				if i == len(tt.batch)-1 {
					w.release()
				}
				if err := w.frame(opBinary, p, false); err != nil {
					t.Fatalf("frame: %v", err)
				}
				want = append(append(want, (&batchWriter{}).header(opBinary, len(p))...), p...)
			}
			if len(nc.writes) != tt.writes {
				t.Errorf("%d writes to the socket, want %d", len(nc.writes), tt.writes)
			}
			if got := bytes.Join(nc.writes, nil); !bytes.Equal(got, want) {
				t.Errorf("the socket got %d bytes out of order or incomplete, want %d", len(got), len(want))
			}
			if w.buf != nil {
				t.Error("the batch buffer is kept after the batch")
			}
			// Outside a batch, writes go straight through.
			before := len(nc.writes)
			_ = w.frame(opBinary, small, false)
			if len(nc.writes) != before+1 {
				t.Error("a write outside a batch was held")
			}
		})
	}
}
