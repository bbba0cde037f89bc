package composetest

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// subscriber runs `sluice sub` on the host against the stack's NATS, as
// the stack's subscriber user, and collects the events it prints.
type subscriber struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events map[string]map[string]any // id → event
	stderr strings.Builder
	done   chan struct{}
}

// startSub runs sluice sub --count count FILTER, logging at debug level so
// that the test sees when it has subscribed.
func startSub(t *testing.T, s *stack, filter string, count int) *subscriber {
	t.Helper()
	sub := &subscriber{events: map[string]map[string]any{}, done: make(chan struct{})}
	args := append([]string{"sub"}, s.sluiceNATSFlags(t, "subscriber", 0, 1, 2)...)
	sub.cmd = exec.Command(s.sluiceBin(), append(args, "--log-level", "debug", "--count", strconv.Itoa(count), filter)...)
	stdout, err := sub.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sub.cmd.Stderr = &lockedWriter{mu: &sub.mu, w: &sub.stderr}
	if err := sub.cmd.Start(); err != nil {
		t.Fatalf("starting sluice sub: %v", err)
	}
	t.Cleanup(func() {
		_ = sub.cmd.Process.Kill()
		<-sub.done
	})
	go func() {
		defer close(sub.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			id, _ := ev["id"].(string)
			sub.mu.Lock()
			sub.events[id] = ev
			sub.mu.Unlock()
		}
		_ = sub.cmd.Wait()
	}()
	return sub
}

func (sub *subscriber) event(id string) map[string]any {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.events[id]
}

func (sub *subscriber) stderrText() string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.stderr.String()
}

// wait waits for sluice sub to exit and returns its exit code, or false
// past total.
func (sub *subscriber) wait(total time.Duration) (int, bool) {
	select {
	case <-sub.done:
		return sub.cmd.ProcessState.ExitCode(), true
	case <-time.After(total):
		return -1, false
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
