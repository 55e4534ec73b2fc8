package wandbtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// pipeListener is an in-memory network: Dial hands one end of a net.Pipe to Accept. Blocking on it is
// durable in the sense of testing/synctest, so timing tests run on the bubble's fake clock.
type pipeListener struct {
	conns   chan net.Conn
	closed  chan struct{}
	once    sync.Once
	refused func() bool
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "wandbtest.invalid:80" }

func newPipeListener(refused func() bool) *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{}), refused: refused}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	if l.refused() {
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: syscall.ECONNREFUSED}
	}
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: syscall.ECONNREFUSED}
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

// hijackClose ends the connection without an answer, or after a partial one.
func hijackClose(w http.ResponseWriter, partial string) error {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return errors.New("wandbtest: connection cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return err
	}
	if partial != "" {
		buf.WriteString(partial)
		buf.Flush()
	}
	return conn.Close()
}
