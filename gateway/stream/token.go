package stream

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Token is a resume token: a position in a named stream. Its text form
// (String) is opaque to clients and versioned: "1." then the stream's name
// in unpadded base64url, then the epoch and the position in base 36,
// separated by dots. A token names its stream, so a token of another stream
// (another type, another prefix, another mode) is refused with 400 rather
// than read as a position it is not.
type Token struct {
	// Stream names the stream: "core:<prefix>.enriched.<type>" in core
	// mode; in durable mode the JetStream stream and the type.
	Stream string
	// Epoch tells positions of different lives of the stream apart: in core
	// mode the gateway's start (Unix nanoseconds); 0 in durable mode.
	Epoch uint64
	// Pos is the position of the event the token was given with: in core
	// mode the count of events of this type this gateway received since
	// Epoch; in durable mode the stream sequence.
	Pos uint64
}

const tokenVersion = "1."

// maxTokenLen bounds what ParseToken reads.
const maxTokenLen = 512

// String returns the token's text form.
func (t Token) String() string { return string(t.Append(nil)) }

// Append appends the token's text form to b.
func (t Token) Append(b []byte) []byte {
	b = append(b, tokenVersion...)
	b = base64.RawURLEncoding.AppendEncode(b, []byte(t.Stream))
	b = append(b, '.')
	b = strconv.AppendUint(b, t.Epoch, 36)
	b = append(b, '.')
	return strconv.AppendUint(b, t.Pos, 36)
}

// ParseToken reads a token's text form. Every error wraps [ErrBadToken].
func ParseToken(s string) (Token, error) {
	if len(s) > maxTokenLen {
		return Token{}, fmt.Errorf("%w: longer than %d bytes", ErrBadToken, maxTokenLen)
	}
	rest, ok := strings.CutPrefix(s, tokenVersion)
	if !ok {
		return Token{}, fmt.Errorf("%w: %q is not a version 1 token", ErrBadToken, s)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return Token{}, fmt.Errorf("%w: %q has %d fields, want 3", ErrBadToken, s, len(parts))
	}
	stream, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || len(stream) == 0 {
		return Token{}, fmt.Errorf("%w: %q names no stream", ErrBadToken, s)
	}
	var t Token
	t.Stream = string(stream)
	if t.Epoch, err = strconv.ParseUint(parts[1], 36, 64); err != nil {
		return Token{}, fmt.Errorf("%w: %q: epoch: %w", ErrBadToken, s, err)
	}
	if t.Pos, err = strconv.ParseUint(parts[2], 36, 64); err != nil {
		return Token{}, fmt.Errorf("%w: %q: position: %w", ErrBadToken, s, err)
	}
	return t, nil
}
