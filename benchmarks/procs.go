package benchmarks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Role is what a process is in a measured system; CPU per event is
// reported by role.
type Role string

// The roles.
const (
	RoleEdge    Role = "edge"    // the HTTP server: gateway, baseline or naive gateway
	RoleWorker  Role = "worker"  // workers
	RoleNATS    Role = "nats"    // the NATS server
	RoleLoadgen Role = "loadgen" // this process: the generator and the end-to-end observer
)

// child is a process the suite started.
type child struct {
	name    string
	role    Role
	cmd     *exec.Cmd
	pid     int
	addr    string // data or client address
	ops     string // ops listener, if any
	logPath string
	ready   chan string // the first "ready ..." line of its standard output
	exited  chan struct{}
	err     error // after exited
	tree    bool  // its CPU is its process tree's (nginx's workers)
}

// readyTimeout bounds how long a child may take to come up.
const readyTimeout = 30 * time.Second

// startChild starts the sluice binary with args, its standard error and
// output going to a log file in the work directory.
func (s *suite) startChild(name string, role Role, args ...string) (*child, error) {
	c, err := s.startCmd(name, role, s.o.Launcher(args...))
	if err == nil {
		s.log.Debug("started", "child", name, "pid", c.pid, "args", strings.Join(args, " "))
	}
	return c, err
}

// startCmd starts cmd as a child (startChild's, or another program).
func (s *suite) startCmd(name string, role Role, cmd *exec.Cmd) (*child, error) {
	c := &child{name: name, role: role, ready: make(chan string, 1), exited: make(chan struct{}),
		logPath: filepath.Join(s.o.WorkDir, name+".log")}
	logf, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	c.cmd = cmd
	c.cmd.Stderr = logf
	setParentDeathSignal(c.cmd)
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c.pid = c.cmd.Process.Pid
	go c.scan(out, logf)
	return c, nil
}

// scan copies the child's standard output to its log and signals its first
// "ready" line; the child has exited when its output ends.
func (c *child) scan(out io.Reader, logf *os.File) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logf, line)
		if rest, ok := strings.CutPrefix(line, "ready"); ok {
			select {
			case c.ready <- strings.TrimSpace(rest):
			default:
			}
		}
	}
	c.err = c.cmd.Wait()
	_ = logf.Close()
	close(c.exited)
}

// waitLine waits for the child's "ready" line and returns what follows it.
func (c *child) waitLine(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	select {
	case s := <-c.ready:
		return s, nil
	case <-c.exited:
		return "", fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", c.name, c.err, c.tail())
	case <-ctx.Done():
		return "", fmt.Errorf("%s not ready within %v; its log:\n%s", c.name, readyTimeout, c.tail())
	}
}

// waitHTTP polls url until it answers 200.
func (c *child) waitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", c.name, c.err, c.tail())
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not ready within %v; its log:\n%s", c.name, url, readyTimeout, c.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitExit waits for a one-shot child to finish and reports its failure.
func (c *child) waitExit(ctx context.Context) error {
	select {
	case <-c.exited:
		if c.err != nil {
			return fmt.Errorf("%s: %w; its log:\n%s", c.name, c.err, c.tail())
		}
		return nil
	case <-ctx.Done():
		_ = c.cmd.Process.Kill()
		return ctx.Err()
	}
}

// stop asks the child to drain (SIGTERM) and kills it past timeout.
func (c *child) stop(timeout time.Duration) error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		var ee *exec.ExitError
		if c.err != nil && !errors.As(c.err, &ee) {
			return c.err
		}
		if ee != nil && ee.ExitCode() != 0 {
			return fmt.Errorf("%s exited with %d after SIGTERM; its log:\n%s", c.name, ee.ExitCode(), c.tail())
		}
		return nil
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("%s did not exit within %v of SIGTERM: killed", c.name, timeout)
	}
}

// alive reports whether the child still runs.
func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// tail returns the last lines of the child's log.
func (c *child) tail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// freeAddr returns a loopback address with a port free at the time of the
// call.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}
