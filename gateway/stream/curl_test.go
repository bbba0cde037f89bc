package stream_test

import (
	"bufio"
	"context"
	"os/exec"
	"testing"
)

func lookCurl() (string, error) { return exec.LookPath("curl") }

func runCurl(ctx context.Context, t *testing.T, curl string, args []string) *bufio.Reader {
	t.Helper()
	cmd := exec.CommandContext(ctx, curl, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return bufio.NewReader(out)
}
