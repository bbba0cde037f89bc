package gateway

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestFastEdgeH2spec runs h2spec against the gateway with --http2-server
// fast: every case passes over TLS, and every case but "invalid connection
// preface" over h2c on the shared port (net/http answers a preface that is
// not HTTP/2 as HTTP/1.1, by design).
func TestFastEdgeH2spec(t *testing.T) {
	path, err := exec.LookPath("h2spec")
	if err != nil {
		t.Skip("h2spec is not installed: go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible (.ci/run does)")
	}
	certFile, keyFile, roots := selfSigned(t)
	for _, mode := range []string{"h2c", "h2"} {
		t.Run(mode, func(t *testing.T) {
			e := newTestEnv(t, mode, roots, func(o *Options) {
				o.HTTP2Server = HTTP2Fast
				if mode == "h2" {
					o.TLSCert, o.TLSKey = certFile, keyFile
				}
			})
			host, port, _ := strings.Cut(e.srv.Addr(), ":")
			args := []string{"-h", host, "-p", port, "-o", "3", "-P", "/v1/events/quote"}
			if mode == "h2" {
				args = append(args, "-t", "-k")
			}
			out, _ := exec.Command(path, args...).CombinedOutput()
			m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("h2spec printed no summary:\n%s", out)
			}
			t.Logf("h2spec %s through the gateway: %s", mode, m[0])
			failed := string(m[4])
			failures := string(out[max(0, strings.Index(string(out), "Failures:")):])
			switch {
			case mode == "h2" && failed != "0":
				t.Errorf("h2spec over TLS: %s failed:\n%s", failed, failures)
			case mode == "h2c" && (failed != "1" || !strings.Contains(failures, "invalid connection preface")):
				t.Errorf("h2spec over h2c: %s failed, want only the invalid preface:\n%s", failed, failures)
			}
		})
	}
}
