package ops_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/ops"
)

func TestNewLogger(t *testing.T) {
	tests := []struct {
		level, format string
		wantDebug     bool
		wantInfo      bool
	}{
		{"", "", false, true},
		{"debug", "text", true, true},
		{"INFO", "json", false, true},
		{"warn", "json", false, false},
		{"error", "text", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := ops.NewLogger(&buf, tt.level, tt.format)
			if err != nil {
				t.Fatalf("NewLogger: %v", err)
			}
			l.Debug("d")
			l.Info("i")
			out := buf.String()
			if got := strings.Contains(out, "msg=d") || strings.Contains(out, `"msg":"d"`); got != tt.wantDebug {
				t.Errorf("debug logged = %v, want %v: %q", got, tt.wantDebug, out)
			}
			if got := strings.Contains(out, "msg=i") || strings.Contains(out, `"msg":"i"`); got != tt.wantInfo {
				t.Errorf("info logged = %v, want %v: %q", got, tt.wantInfo, out)
			}
			if tt.format == "json" && tt.wantInfo && !json.Valid(bytes.TrimSpace(buf.Bytes())) {
				t.Errorf("json output not valid: %q", out)
			}
		})
	}
}

func TestNewLoggerBadValues(t *testing.T) {
	tests := []struct {
		level, format string
		want          error
	}{
		{"verbose", "text", ops.ErrInvalidLogLevel},
		{"info", "yaml", ops.ErrInvalidLogFormat},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.format, func(t *testing.T) {
			l, err := ops.NewLogger(nil, tt.level, tt.format)
			if !errors.Is(err, tt.want) || l != nil {
				t.Fatalf("NewLogger = %v, %v; want nil, %v", l, err, tt.want)
			}
		})
	}
}
