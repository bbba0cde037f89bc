//go:build unix

package main

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestSweepDevStores: a store whose owner process is gone is removed; one
// owned by a live process, one without an owner file and other folders are
// kept; makeDevStore records its owner.
func TestSweepDevStores(t *testing.T) {
	tmp := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	mk := func(name, owner string) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "jetstream"), 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, devStoreOwner), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	dead := mk(devStorePrefix+"dead", strconv.Itoa(gone.Process.Pid))
	live := mk(devStorePrefix+"live", strconv.Itoa(os.Getppid()))
	starting := mk(devStorePrefix+"starting", "")
	other := mk("other-"+strconv.Itoa(gone.Process.Pid), strconv.Itoa(gone.Process.Pid))
	sweepDevStores(tmp, slog.New(slog.DiscardHandler))
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the store of a process that is gone is still there (%v)", err)
	}
	for _, dir := range []string{live, starting, other} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(dir), err)
		}
	}
	t.Setenv("TMPDIR", tmp)
	dir, err := makeDevStore(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, devStoreOwner)); err != nil || string(b) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("owner file %q (%v)", b, err)
	}
}
