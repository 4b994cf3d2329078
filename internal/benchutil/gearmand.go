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

// Server is a private server process on a free loopback port.
type Server struct {
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

// StartGearmand starts gearmand in dir (its log and pid file live there),
// with the flags scripts/services uses plus extra ones (a queue type, say).
func StartGearmand(dir string, extra ...string) (*Server, error) {
	return start(dir, "gearmand", func(port int) []string {
		return append([]string{"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port),
			"--log-file=" + filepath.Join(dir, "log"), "--pid-file=" + filepath.Join(dir, "pid"),
			"--verbose=WARNING"}, extra...)
	})
}

// StartRedis starts a redis-server that keeps its data in dir with an
// append-only file synced every second: gearmand's redis queue on it loses
// at most the last second of jobs if redis itself dies.
func StartRedis(dir string) (*Server, error) {
	return start(dir, "redis-server", func(port int) []string {
		return []string{"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", dir,
			"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
			"--logfile", filepath.Join(dir, "log")}
	})
}

// start runs bin with args(port) and waits up to 10 s for it to accept
// connections on port.
func start(dir, bin string, args func(port int) []string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, done: make(chan struct{})}
	g.cmd = exec.Command(bin, args(port)...)
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
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
			return nil, fmt.Errorf("%s exited at start: %s", bin, log)
		default:
		}
		if time.Now().After(deadline) {
			g.Stop()
			return nil, errors.New(bin + " did not listen on " + g.Addr + " within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (its data is of no further use) and waits for it.
func (g *Server) Stop() {
	if g == nil || g.cmd == nil || g.cmd.Process == nil {
		return
	}
	g.cmd.Process.Kill()
	<-g.done
	g.cmd = nil
}
