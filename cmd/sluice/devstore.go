package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sluice dev keeps its JetStream store (streams, the reference data
// bucket) in a temporary folder, removed when it stops: file storage as a
// deployment has, and nothing left behind. A sluice dev killed with kill -9
// cannot remove its folder, so each folder holds its owner's process id and
// the next sluice dev removes the folders whose owner is gone.
const (
	devStorePrefix = "sluice-dev-"
	devStoreOwner  = "owner.pid"
)

// makeDevStore removes the stores of earlier runs whose process is gone,
// then creates this run's in the temporary folder and records this process
// as its owner.
func makeDevStore(log *slog.Logger) (string, error) {
	sweepDevStores(os.TempDir(), log)
	dir, err := os.MkdirTemp("", devStorePrefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, devStoreOwner), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// sweepDevStores removes the sluice dev stores in tmp whose owner process
// no longer runs. A folder without an owner file (another sluice dev
// starting, or one from an older version) is left alone, as is one whose
// owner's id is held by a live process.
func sweepDevStores(tmp string, log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, devStorePrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, devStoreOwner))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("removing the store of a sluice dev that did not stop", "dir", dir, "pid", pid, "err", err)
			continue
		}
		log.Info("removed the store of a sluice dev that did not stop", "dir", dir, "pid", pid)
	}
}
