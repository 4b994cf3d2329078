package gearman

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The worker side of the gearman binary protocol. gearman-go's worker cannot
// stop grabbing jobs (no graceful drain), grabs a next job on every
// assignment, and drops results after Close; the runner and queue Get need
// control of each GRAB, so they speak the protocol themselves.

const (
	ptCanDo         = 1
	ptResetAbility  = 3
	ptPreSleep      = 4
	ptNoop          = 6
	ptNoJob         = 10
	ptWorkStatus    = 12
	ptWorkComplete  = 13
	ptWorkFail      = 14
	ptEchoReq       = 16
	ptEchoRes       = 17
	ptError         = 19
	ptSetClientID   = 22
	ptWorkData      = 28
	ptWorkWarning   = 29
	ptGrabJobUniq   = 30
	ptJobAssignUniq = 31
)

var (
	magicReq = []byte("\x00REQ")
	magicRes = []byte("\x00RES")
)

// maxPacket bounds what we accept from gearmand, so a corrupt length can't
// make us allocate gigabytes.
const maxPacket = 256 << 20

type packet struct {
	typ  uint32
	args [][]byte
}

// wconn is one worker connection to gearmand.
type wconn struct {
	nc net.Conn
	r  *bufio.Reader
	mu sync.Mutex // serializes writes: a handler may send data while the loop waits
	// pending holds packets queued by later, written in front of the next
	// packet sent (a job's WORK_COMPLETE rides with the next GRAB: one write
	// instead of two) or by flush. Guarded by mu, as is wbuf.
	pending []byte
	wbuf    []byte
	// The worker's functions, registered turning (see turnEvery).
	fns      []string
	turn     int
	turnedAt time.Time
}

func dialWorker(addr string, timeout time.Duration) (*wconn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &wconn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}, nil
}

func (c *wconn) close() error { return c.nc.Close() }

// appendPacket appends one request packet to buf.
func appendPacket(buf []byte, typ uint32, args ...[]byte) []byte {
	n := len(args) - 1
	for _, a := range args {
		n += len(a)
	}
	if n < 0 {
		n = 0
	}
	buf = append(buf, magicReq...)
	buf = binary.BigEndian.AppendUint32(buf, typ)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	for i, a := range args {
		if i > 0 {
			buf = append(buf, 0)
		}
		buf = append(buf, a...)
	}
	return buf
}

// send writes the pending packets and this one, in one write.
func (c *wconn) send(typ uint32, args ...[]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := appendPacket(append(c.wbuf[:0], c.pending...), typ, args...)
	c.pending = c.pending[:0]
	_, err := c.nc.Write(buf)
	if cap(buf) <= 64<<10 {
		c.wbuf = buf[:0]
	}
	return err
}

// later queues a packet for the next send or flush.
func (c *wconn) later(typ uint32, args ...[]byte) {
	c.mu.Lock()
	c.pending = appendPacket(c.pending, typ, args...)
	c.mu.Unlock()
}

// flush writes the pending packets, if any.
func (c *wconn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.pending)
	c.pending = c.pending[:0]
	return err
}

// nargs is how many NUL-separated arguments a response type carries; the last
// one may contain NULs.
func nargs(typ uint32) int {
	switch typ {
	case ptJobAssignUniq:
		return 4
	case ptError:
		return 2
	default:
		return 1
	}
}

func (c *wconn) recv() (packet, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return packet{}, err
	}
	if !bytes.Equal(hdr[:4], magicRes) {
		return packet{}, fmt.Errorf("gearman: bad packet magic %q", hdr[:4])
	}
	typ := binary.BigEndian.Uint32(hdr[4:])
	size := binary.BigEndian.Uint32(hdr[8:])
	if size > maxPacket {
		return packet{}, fmt.Errorf("gearman: packet of %d bytes is too large", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return packet{}, err
	}
	p := packet{typ: typ}
	if size > 0 || nargs(typ) > 1 {
		p.args = bytes.SplitN(body, []byte{0}, nargs(typ))
	}
	if typ == ptError {
		return p, fmt.Errorf("%w: %s", ErrServer, bytes.Join(p.args, []byte(": ")))
	}
	return p, nil
}

// grab asks for one job. It returns (nil, nil) when gearmand has none.
func (c *wconn) grab() (*Job, error) {
	if err := c.send(ptGrabJobUniq); err != nil {
		return nil, err
	}
	for {
		p, err := c.recv()
		if err != nil {
			return nil, err
		}
		switch p.typ {
		case ptNoJob:
			return nil, nil
		case ptNoop: // a late wake-up from an earlier sleep
			continue
		case ptJobAssignUniq:
			if len(p.args) != 4 {
				return nil, fmt.Errorf("gearman: JOB_ASSIGN_UNIQ with %d arguments", len(p.args))
			}
			return &Job{Handle: string(p.args[0]), Function: string(p.args[1]),
				Unique: string(p.args[2]), Workload: p.args[3], conn: c}, nil
		default:
			return nil, fmt.Errorf("gearman: unexpected packet %d while grabbing", p.typ)
		}
	}
}

// sleep tells gearmand we are idle and waits for its NOOP wake-up. The read
// is interrupted by closing the connection or by a read deadline.
func (c *wconn) sleep() error {
	if err := c.send(ptPreSleep); err != nil {
		return err
	}
	for {
		p, err := c.recv()
		if err != nil {
			return err
		}
		if p.typ == ptNoop {
			return nil
		}
	}
}

// echo round-trips an ECHO: once it returns, gearmand has processed every
// packet we sent before it (it reads a connection in order).
func (c *wconn) echo() error {
	if err := c.send(ptEchoReq, []byte("ack")); err != nil {
		return err
	}
	for {
		p, err := c.recv()
		if err != nil {
			return err
		}
		if p.typ == ptEchoRes {
			return nil
		}
	}
}
