// Package benchutil holds the small pieces cmd/bench needs outside a
// testing.T: a private gearmand, percentiles, a paced writer.
package benchutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Gearmand is a private gearmand on a free loopback port, started with the
// flags scripts/services uses plus extra ones (a queue type, say).
type Gearmand struct {
	Addr string
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// FreePort returns a loopback TCP port nobody listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartGearmand starts gearmand in dir (its log and pid file live there)
// and waits up to 10 s for it to accept connections.
func StartGearmand(dir string, extra ...string) (*Gearmand, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &Gearmand{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, done: make(chan struct{})}
	args := append([]string{"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port),
		"--log-file=" + filepath.Join(dir, "log"), "--pid-file=" + filepath.Join(dir, "pid"),
		"--verbose=WARNING"}, extra...)
	g.cmd = exec.Command("gearmand", args...)
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gearmand: %w", err)
	}
	go func() { g.cmd.Wait(); close(g.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", g.Addr, time.Second)
		if err == nil {
			c.Close()
			return g, nil
		}
		select {
		case <-g.done:
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			return nil, fmt.Errorf("gearmand %v exited at start: %s", extra, log)
		default:
		}
		if time.Now().After(deadline) {
			g.Stop()
			return nil, errors.New("gearmand did not listen on " + g.Addr + " within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (its queue is of no further use) and waits for it.
func (g *Gearmand) Stop() {
	if g == nil || g.cmd == nil || g.cmd.Process == nil {
		return
	}
	g.cmd.Process.Kill()
	<-g.done
	g.cmd = nil
}
