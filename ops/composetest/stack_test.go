package composetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stack is one compose project of docker-compose.yml, driven through the
// compose tool that is installed (`docker compose` or `docker-compose`) and
// the docker CLI. Containers are found by the labels both tools set
// (com.docker.compose.project, com.docker.compose.service), never by name,
// since v1 names them p_svc_1 and v2 p-svc-1.
type stack struct {
	root    string   // repository root, holding docker-compose.yml
	compose []string // docker compose, or docker-compose
	project string
	env     []string // KEY=value given to every command on top of os.Environ
	images  []string // image tags of the run (sluice, nats), built once for the package
	build   string   // SLUICE_BUILD_DIR of docker/build.sh: holds the sluice binary
	ports   hostPorts
	// profiles are the compose profiles given to every compose command
	// (--profile observability adds Prometheus).
	profiles []string
	// creds holds the NATS users' folders copied out of the natsauth
	// container (userDir) at the first connection that needs them.
	creds   string
	credsMu sync.Mutex
	isDown  bool
	// quotes is the number of quotes workers the fault cases keep running.
	quotes int
}

// hostPorts are the 127.0.0.1 ports the stack publishes, picked free for
// the run instead of the defaults of docker-compose.yml (8080, 4222, ...)
// so that the test does not collide with a stack or `sluice dev` already
// running on the machine.
type hostPorts struct {
	gatewayA, gatewayAOps int
	gatewayB, gatewayBOps int
	nats, natsMonitor     [3]int // nats-1, nats-2, nats-3
}

// container is what the test reads of a container from docker inspect.
type container struct {
	ID      string
	Name    string
	Service string
	Number  int
	Status  string // created, running, exited, ...
	Health  string // starting, healthy, unhealthy; "" without a health check
	Exit    int
}

// newStack finds the repository, the compose tool and free ports, and
// registers the clean-up that takes the project down (down -v). The images
// are the package's (built): TestMain removes them. It skips the test where
// no Docker engine or compose tool is available.
func newStack(t *testing.T) *stack {
	t.Helper()
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("compose test skipped: no Docker engine answers `docker info`: %v: %s", err, bytes.TrimSpace(out))
	}
	compose, version := findCompose()
	if compose == nil {
		t.Skip("compose test skipped: neither `docker compose` nor `docker-compose` is installed")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	build, err := buildDir()
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{
		root:    root,
		compose: compose,
		project: fmt.Sprintf("sluicetest%d", os.Getpid()),
		images:  []string{imageTag("sluice"), imageTag("nats")},
		build:   build,
		creds:   t.TempDir(),
	}
	ports, err := freePorts(10)
	if err != nil {
		t.Fatal(err)
	}
	p := &s.ports
	p.gatewayA, p.gatewayAOps, p.gatewayB, p.gatewayBOps = ports[0], ports[1], ports[2], ports[3]
	copy(p.nats[:], ports[4:7])
	copy(p.natsMonitor[:], ports[7:10])
	s.env = []string{
		"SLUICE_IMAGE=" + s.images[0],
		"SLUICE_NATS_IMAGE=" + s.images[1],
		"SLUICE_BUILD_DIR=" + s.build,
		"SLUICE_COMPOSE_GATEWAY_A_PORT=" + strconv.Itoa(p.gatewayA),
		"SLUICE_COMPOSE_GATEWAY_A_OPS_PORT=" + strconv.Itoa(p.gatewayAOps),
		"SLUICE_COMPOSE_GATEWAY_B_PORT=" + strconv.Itoa(p.gatewayB),
		"SLUICE_COMPOSE_GATEWAY_B_OPS_PORT=" + strconv.Itoa(p.gatewayBOps),
	}
	for i := range 3 {
		s.env = append(s.env,
			fmt.Sprintf("SLUICE_COMPOSE_NATS_%d_PORT=%d", i+1, p.nats[i]),
			fmt.Sprintf("SLUICE_COMPOSE_NATS_%d_MONITOR_PORT=%d", i+1, p.natsMonitor[i]))
	}
	t.Logf("compose tool: %s (%s); project %s; gateways 127.0.0.1:%d, 127.0.0.1:%d; nats 127.0.0.1:%d,%d,%d",
		strings.Join(compose, " "), version, s.project, p.gatewayA, p.gatewayB, p.nats[0], p.nats[1], p.nats[2])
	t.Cleanup(func() { s.cleanup(t) })
	return s
}

// findCompose returns the compose command that works here, preferring the
// docker CLI plugin, with its version, or nil.
func findCompose() ([]string, string) {
	for _, c := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		out, err := exec.Command(c[0], append(c[1:], "version", "--short")...).Output()
		if err == nil {
			return c, strings.TrimSpace(string(out))
		}
	}
	return nil, ""
}

// repoRoot walks up from the working directory (the package folder under
// go test) to the folder holding docker-compose.yml and go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "docker-compose.yml")) && fileExists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no docker-compose.yml beside a go.mod above the working directory")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// run runs a command in the repository root with the stack's environment
// and returns its combined output; the error holds the output too.
func (s *stack) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), s.env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// composeCmd runs the compose tool on the project.
func (s *stack) composeCmd(ctx context.Context, args ...string) (string, error) {
	full := append(append([]string{}, s.compose[1:]...), "-p", s.project, "-f", filepath.Join(s.root, "docker-compose.yml"))
	for _, p := range s.profiles {
		full = append(full, "--profile", p)
	}
	return s.run(ctx, s.compose[0], append(full, args...)...)
}

// docker runs the docker CLI.
func (s *stack) docker(ctx context.Context, args ...string) (string, error) {
	return s.run(ctx, "docker", args...)
}

// built is what docker/build.sh built for this test binary. Every test of
// the package runs the same sources under the same tags, so each image is
// built once, by the first test that needs it, into one build folder, and
// TestMain removes the images and the folder at the end: a build of sluice
// and nats costs about 20 s (mostly the legacy builder's steps), and three
// tests used to build them three times.
var built = struct {
	sync.Mutex
	tmp  string          // made by the first stack, removed by TestMain
	done map[string]bool // sluice, nats, prometheus
}{done: map[string]bool{}}

// buildDir is the SLUICE_BUILD_DIR of every stack of the run.
func buildDir() (string, error) {
	built.Lock()
	defer built.Unlock()
	if built.tmp == "" {
		dir, err := os.MkdirTemp("", "sluice-composetest-")
		if err != nil {
			return "", err
		}
		built.tmp = dir
	}
	return filepath.Join(built.tmp, "build"), nil
}

// imageTag is the tag of this run's image name (sluice, nats or prometheus).
func imageTag(name string) string {
	repo := "sluice"
	if name != "sluice" {
		repo += "-" + name
	}
	return fmt.Sprintf("%s:composetest-%d", repo, os.Getpid())
}

func TestMain(m *testing.M) {
	code := m.Run()
	removeImages()
	if built.tmp != "" {
		os.RemoveAll(built.tmp)
	}
	os.Exit(code)
}

// removeImages removes the images the tests built.
func removeImages() {
	built.Lock()
	defer built.Unlock()
	var tags []string
	for name := range built.done {
		tags = append(tags, imageTag(name))
	}
	if len(tags) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", append([]string{"rmi"}, tags...)...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "composetest: removing the images of the run: %v: %s\n", err, out)
	}
}

// buildImages runs docker/build.sh, which builds the static binaries and
// the FROM-scratch images under this run's tags, for the images named (by
// default sluice and nats) that no earlier test of the run built, and says
// what it did.
func (s *stack) buildImages(ctx context.Context, images ...string) (string, error) {
	if len(images) == 0 {
		images = []string{"sluice", "nats"}
	}
	built.Lock()
	defer built.Unlock()
	var need []string
	for _, name := range images {
		if !built.done[name] {
			need = append(need, name)
		}
	}
	if len(need) == 0 {
		return fmt.Sprintf("images %s already built by an earlier test", strings.Join(images, ", ")), nil
	}
	t0 := time.Now()
	if _, err := s.run(ctx, "bash", append([]string{filepath.Join(s.root, "docker", "build.sh")}, need...)...); err != nil {
		return "", err
	}
	var tags []string
	for _, name := range need {
		built.done[name] = true
		tags = append(tags, imageTag(name))
	}
	return fmt.Sprintf("images %s built in %v", strings.Join(tags, ", "), time.Since(t0).Round(100*time.Millisecond)), nil
}

// sluiceBin is the sluice binary built for the images, run by the test as a
// user would run it on the host.
func (s *stack) sluiceBin() string { return filepath.Join(s.build, "sluice") }

// containers returns the project's containers of service ("" for all),
// running or not, ordered by service and number.
func (s *stack) containers(ctx context.Context, service string) ([]container, error) {
	args := []string{"ps", "-a", "-q", "--no-trunc", "--filter", "label=com.docker.compose.project=" + s.project}
	if service != "" {
		args = append(args, "--filter", "label=com.docker.compose.service="+service)
	}
	out, err := s.docker(ctx, args...)
	if err != nil {
		return nil, err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil, nil
	}
	out, err = s.docker(ctx, append([]string{"inspect"}, ids...)...)
	if err != nil {
		return nil, err
	}
	var raw []struct {
		ID     string `json:"Id"`
		Name   string
		Config struct{ Labels map[string]string }
		State  struct {
			Status   string
			ExitCode int
			Health   *struct{ Status string }
		}
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return nil, fmt.Errorf("decoding docker inspect: %w", err)
	}
	cs := make([]container, 0, len(raw))
	for _, r := range raw {
		c := container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), Service: r.Config.Labels["com.docker.compose.service"],
			Status: r.State.Status, Exit: r.State.ExitCode}
		c.Number, _ = strconv.Atoi(r.Config.Labels["com.docker.compose.container-number"])
		if r.State.Health != nil {
			c.Health = r.State.Health.Status
		}
		cs = append(cs, c)
	}
	sortContainers(cs)
	return cs, nil
}

func sortContainers(cs []container) {
	slices.SortFunc(cs, func(a, b container) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), cmp.Compare(a.Number, b.Number))
	})
}

// running returns the running containers of service.
func (s *stack) running(ctx context.Context, service string) ([]container, error) {
	all, err := s.containers(ctx, service)
	if err != nil {
		return nil, err
	}
	var cs []container
	for _, c := range all {
		if c.Status == "running" {
			cs = append(cs, c)
		}
	}
	return cs, nil
}

// checkReady reports nil when every service in healthy has exactly that
// many running containers, all passing their health check, and every
// service in completed has exited 0.
func (s *stack) checkReady(ctx context.Context, healthy map[string]int, completed ...string) error {
	all, err := s.containers(ctx, "")
	if err != nil {
		return err
	}
	var problems []string
	count := map[string]int{}
	for _, c := range all {
		switch {
		case slices.Contains(completed, c.Service):
			if c.Status != "exited" || c.Exit != 0 {
				problems = append(problems, fmt.Sprintf("%s is %s (exit %d), want exited 0", c.Name, c.Status, c.Exit))
			}
			count[c.Service]++
		case c.Status == "running" && c.Health == "healthy":
			count[c.Service]++
		case c.Status == "running" || c.Status == "created" || c.Status == "restarting":
			problems = append(problems, fmt.Sprintf("%s is %s (health %q)", c.Name, c.Status, c.Health))
		}
	}
	for svc, n := range healthy {
		if count[svc] != n {
			problems = append(problems, fmt.Sprintf("%s: %d healthy, want %d", svc, count[svc], n))
		}
	}
	for _, svc := range completed {
		if count[svc] == 0 {
			problems = append(problems, svc+": no container")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// publishedPort returns the 127.0.0.1 port that publishes port (e.g. "9091/tcp")
// of container id.
func (s *stack) publishedPort(ctx context.Context, id, port string) (int, error) {
	out, err := s.docker(ctx, "port", id, port)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		host, p, err := net.SplitHostPort(strings.TrimSpace(line))
		if err == nil && host == "127.0.0.1" {
			return strconv.Atoi(p)
		}
	}
	return 0, fmt.Errorf("container %.12s publishes %s on no 127.0.0.1 port: %q", id, port, out)
}

// down takes the project down, removing its containers, network and
// volumes.
func (s *stack) down(ctx context.Context) error {
	_, err := s.composeCmd(ctx, "down", "-v", "--remove-orphans", "-t", "10")
	if err == nil {
		s.isDown = true
	}
	return err
}

// leftovers lists what the project left behind: containers, networks and
// volumes carrying its label or its name prefix.
func (s *stack) leftovers(ctx context.Context) ([]string, error) {
	var left []string
	label := "label=com.docker.compose.project=" + s.project
	for _, q := range [][]string{
		{"ps", "-a", "--format", "container {{.Names}}", "--filter", label},
		{"network", "ls", "--format", "network {{.Name}}", "--filter", label},
		{"network", "ls", "--format", "network {{.Name}}", "--filter", "name=" + s.project + "_"},
		{"volume", "ls", "--format", "volume {{.Name}}", "--filter", label},
		{"volume", "ls", "--format", "volume {{.Name}}", "--filter", "name=" + s.project + "_"},
	} {
		out, err := s.docker(ctx, q...)
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l != "" && !slices.Contains(left, l) {
				left = append(left, l)
			}
		}
	}
	return left, nil
}

// cleanup dumps the logs of a failed run and takes the project down if a
// step did not (TestMain removes the images).
func (s *stack) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if t.Failed() && !s.isDown {
		if out, err := s.composeCmd(ctx, "logs", "--no-color", "--tail", "40"); err == nil {
			t.Logf("logs of the stack (last 40 lines per container):\n%s", out)
		}
	}
	if !s.isDown {
		if err := s.down(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}
