package main

// chat: line-based rooms with ctxlab's semantics (src/proto/chat.c).
//
// A client is in room "lobby" from the moment it is accepted. If the first non-empty line it
// sends is `/join ROOM` it moves to ROOM (1..64 visible ASCII bytes). Lines end with '\n', one
// '\r' before it is stripped, empty lines are ignored; every other line is delivered to every
// OTHER client of the room as `<senderid>: <line>\n`. A room's lock is held while a line is
// queued to all its members, so every member sees the room's lines in one global order.
//
// Each client has a bounded output queue drained by its own writer goroutine. A client whose
// queue (queued plus being written) would go over -max-outbuf bytes gets
// `* disconnected: output queue over N bytes (slow reader)\n` after what it already has, is
// taken out of its room, and is closed once that is flushed (or after 5 s of not reading).

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

const (
	lobby          = "lobby"
	maxRoomName    = 64
	overflowLinger = 5 * time.Second
)

type chatServer struct {
	cfg   *config
	mu    sync.Mutex
	rooms map[string]*room
}

type room struct {
	name    string
	mu      sync.Mutex
	members map[*client]struct{}
}

type client struct {
	id       uint64
	conn     net.Conn
	srv      *chatServer
	room     *room // changed only by the client's reader goroutine, under the rooms' locks
	mu       sync.Mutex
	cond     *sync.Cond
	out      []byte
	spare    []byte
	inflight int
	closing  bool // flush what is queued, then close
	dead     bool // the connection failed or was closed
}

func newChatServer(cfg *config) *chatServer {
	return &chatServer{cfg: cfg, rooms: make(map[string]*room)}
}

func (s *chatServer) room(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[name]
	if r == nil {
		r = &room{name: name, members: make(map[*client]struct{})}
		s.rooms[name] = r
	}
	return r
}

func (s *chatServer) serve(conn net.Conn, id uint64) {
	c := &client{id: id, conn: conn, srv: s}
	c.cond = sync.NewCond(&c.mu)
	go c.writer()
	c.join(s.room(lobby))
	c.reader()
	c.leave()
	c.finish("")
}

func (c *client) join(r *room) {
	r.mu.Lock()
	r.members[c] = struct{}{}
	c.room = r
	r.mu.Unlock()
}

func (c *client) leave() {
	r := c.room
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.members, c)
	r.mu.Unlock()
}

// enqueue adds msg to c's queue; false when the bound was crossed (c is then closing).
// Called with c's room lock held.
func (c *client) enqueue(msg []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.dead {
		return true // already leaving: it gets nothing more
	}
	if uint64(len(c.out)+c.inflight+len(msg)) > c.srv.cfg.maxOutbuf {
		c.out = append(c.out, fmt.Sprintf("* disconnected: output queue over %d bytes (slow reader)\n",
			c.srv.cfg.maxOutbuf)...)
		c.closing = true
		c.conn.SetWriteDeadline(time.Now().Add(overflowLinger))
		c.cond.Signal()
		return false
	}
	c.out = append(c.out, msg...)
	c.cond.Signal()
	return true
}

// finish queues a last line (may be empty) and closes c once its queue is flushed.
func (c *client) finish(last string) {
	c.mu.Lock()
	if !c.closing && !c.dead {
		c.out = append(c.out, last...)
		c.closing = true
		c.conn.SetWriteDeadline(time.Now().Add(overflowLinger))
	}
	c.cond.Signal()
	c.mu.Unlock()
}

func (c *client) writer() {
	for {
		c.mu.Lock()
		for len(c.out) == 0 && !c.closing && !c.dead {
			c.cond.Wait()
		}
		if c.dead || len(c.out) == 0 {
			c.dead = true
			c.mu.Unlock()
			c.conn.Close()
			return
		}
		chunk := c.out
		c.out = c.spare[:0]
		c.inflight = len(chunk)
		c.mu.Unlock()
		_, err := c.conn.Write(chunk)
		c.mu.Lock()
		c.inflight = 0
		c.spare = chunk[:0]
		if err != nil {
			c.dead = true
		}
		c.mu.Unlock()
	}
}

func (c *client) publish(line []byte) {
	msg := make([]byte, 0, len(line)+24)
	msg = strconv.AppendUint(msg, c.id, 10)
	msg = append(msg, ':', ' ')
	msg = append(msg, line...)
	msg = append(msg, '\n')
	r := c.room
	r.mu.Lock()
	for m := range r.members {
		if m != c && !m.enqueue(msg) {
			delete(r.members, m)
		}
	}
	r.mu.Unlock()
}

func roomOK(name []byte) bool {
	if len(name) == 0 || len(name) > maxRoomName {
		return false
	}
	for _, b := range name {
		if b < 0x21 || b > 0x7e {
			return false
		}
	}
	return true
}

func (c *client) reader() {
	cfg := c.srv.cfg
	br := bufio.NewReaderSize(c.conn, readSize)
	var long []byte // a line longer than the reader's buffer, being assembled
	firstSeen := false
	for {
		frag, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, frag...)
			if len(long) > cfg.maxLine+1 {
				c.finish(fmt.Sprintf("* error: line over %d bytes (send shorter lines)\n", cfg.maxLine))
				return
			}
			continue
		}
		if err != nil {
			return // EOF or error: a partial line without '\n' is dropped, as in ctxlab
		}
		line := frag
		if long != nil {
			line = append(long, frag...)
			long = nil
		}
		line = line[:len(line)-1]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) > cfg.maxLine {
			c.finish(fmt.Sprintf("* error: line over %d bytes (send shorter lines)\n", cfg.maxLine))
			return
		}
		if len(line) == 0 {
			continue
		}
		if !firstSeen {
			firstSeen = true
			if bytes.HasPrefix(line, []byte("/join")) && (len(line) == 5 || line[5] == ' ') {
				var name []byte
				if len(line) > 5 {
					name = line[6:]
				}
				if !roomOK(name) {
					c.finish(fmt.Sprintf("* error: bad room name (use /join NAME, NAME 1-%d visible characters, no spaces)\n", maxRoomName))
					return
				}
				if string(name) != lobby {
					c.leave()
					c.join(c.srv.room(string(name)))
				}
				continue
			}
		}
		c.publish(line)
		if cfg.work.set() {
			cfg.work.run()
		}
	}
}
