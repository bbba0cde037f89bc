package benchmarks

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestEdgeNotes: the edge scenario's notes give each ratio against its
// target, and the rows left out.
func TestEdgeNotes(t *testing.T) {
	row := func(v string, eps float64) Row {
		return Row{Variant: v, Rounds: 1, EventsPerSec: eps, CPU: map[Role]float64{RoleEdge: 2}}
	}
	sr := &ScenarioResult{Rows: []Row{row("baseline-plain", 100), row("edge-publish-fast", 300),
		row("edge-publish-std", 100), row("edge-request-fast", 150), row("edge-batch-fast", 150), row("edge-batch-std", 100)}}
	notes := strings.Join(edgeNotes(sr, []string{"nginx-plain: " + errNoNginx.Error()}), "\n")
	for _, want := range []string{
		"fast publish ÷ trivial net/http: 3.00× (target ≥ 2.5×: met)",
		"fast publish ÷ std publish: 3.00×",
		"fast request ÷ trivial net/http: 1.50× (target ≥ 2.0×: NOT met)",
		"fast batch events/s ÷ std batch: 1.50× (target ≥ 1.5×: met)",
		"nginx-plain: nginx is not installed",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "÷ nginx") {
		t.Errorf("a ratio to nginx without its row:\n%s", notes)
	}
}

// TestChildPIDs: a process's children are found (nginx's workers are
// counted through them).
func TestChildPIDs(t *testing.T) {
	c := exec.Command("sleep", "10")
	if err := c.Start(); err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	if got := childPIDs(os.Getpid()); !slices.Contains(got, c.Process.Pid) {
		t.Fatalf("children of the test %v, want %d among them", got, c.Process.Pid)
	}
	if _, err := treeCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
