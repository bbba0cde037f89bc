package stream

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/sluice-dev/sluice/internal/h2ws"
)

// WebSocket subprotocols: JSON text frames (the default) or MessagePack
// binary frames.
const (
	SubprotocolJSON    = "sluice.v1.json"
	SubprotocolMsgpack = "sluice.v1.msgpack"
)

// wsTransport writes one WebSocket message per event.
type wsTransport struct {
	c       *websocket.Conn
	ctx     context.Context // ends when the peer closes
	typ     websocket.MessageType
	timeout time.Duration
}

func (s *session) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	c, err := h2ws.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:    []string{SubprotocolJSON, SubprotocolMsgpack},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered the request.
		return
	}
	defer c.CloseNow()
	tr := &wsTransport{c: c, typ: websocket.MessageText, timeout: s.hub.opts.WriteTimeout}
	s.fm = formatWSJSON
	if c.Subprotocol() == SubprotocolMsgpack {
		s.fm, tr.typ = formatWSMsgpack, websocket.MessageBinary
	}
	// Subscribers send nothing; reading discards and answers control frames.
	tr.ctx = c.CloseRead(context.Background())
	s.run(tr)
}

func (t *wsTransport) write(buf []byte, ends []int) error {
	ctx, cancel := context.WithTimeout(t.ctx, t.timeout)
	defer cancel()
	start := 0
	for _, e := range ends {
		if err := t.c.Write(ctx, t.typ, buf[start:e]); err != nil {
			return err
		}
		start = e
	}
	return nil
}

func (t *wsTransport) keepAlive() error {
	ctx, cancel := context.WithTimeout(t.ctx, t.timeout)
	defer cancel()
	return t.c.Ping(ctx)
}

func (t *wsTransport) gone() <-chan struct{} { return t.ctx.Done() }

func (t *wsTransport) end(buf []byte, reason string) error {
	if err := t.write(buf, []int{len(buf)}); err != nil {
		return err
	}
	code := websocket.StatusGoingAway
	if reason == EndSlowConsumer {
		code = websocket.StatusTryAgainLater
	}
	return t.c.Close(code, reason)
}
