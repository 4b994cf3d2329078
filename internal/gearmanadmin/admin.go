// Package gearmanadmin speaks gearmand's text admin protocol ("status",
// "workers", "version", …): what rowgear's status page, console and tests
// read of a server's queues. Applications submit and run jobs with package
// gearman and need none of it.
package gearmanadmin

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Admin sends one command of gearmand's text admin protocol ("status",
// "workers", "version", …) to addr and returns the lines of its answer,
// without the closing ".". Without a deadline on ctx it waits at most 5 s.
func Admin(ctx context.Context, addr, command string) ([]string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(5 * time.Second)
	}
	c.SetDeadline(dl)
	if _, err := c.Write([]byte(command + "\n")); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	var lines []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("gearman admin %q on %s: %w", command, addr, err)
		}
		l = strings.TrimRight(l, "\r\n")
		// One-line answers ("version", "maxqueue", errors) end at their
		// line; lists end with ".".
		switch {
		case l == ".":
			return lines, nil
		case len(lines) == 0 && (command == "version" || strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "ERR ")):
			return []string{l}, nil
		}
		lines = append(lines, l)
	}
}

// FuncStatus is one line of gearmand's admin "status": a function's jobs
// queued (waiting or running), running, and the workers able to run it.
type FuncStatus struct {
	Function string `json:"function"`
	Queued   int    `json:"queued"`
	Running  int    `json:"running"`
	Workers  int    `json:"workers"`
}

// Status returns gearmand's admin "status", one entry per function known
// to the server, in the server's order.
func Status(ctx context.Context, addr string) ([]FuncStatus, error) {
	lines, err := Admin(ctx, addr, "status")
	if err != nil {
		return nil, err
	}
	out := make([]FuncStatus, 0, len(lines))
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("gearman admin status on %s: bad line %q", addr, l)
		}
		s := FuncStatus{Function: f[0]}
		for i, p := range []*int{&s.Queued, &s.Running, &s.Workers} {
			if *p, err = strconv.Atoi(f[i+1]); err != nil {
				return nil, fmt.Errorf("gearman admin status on %s: bad line %q", addr, l)
			}
		}
		out = append(out, s)
	}
	return out, nil
}
