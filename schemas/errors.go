package schemas

import (
	"errors"
	"fmt"
)

// Decoding errors. Decoders wrap them with the field or position they met
// them at; test with [errors.Is].
var (
	// ErrShortBuffer means the input ended inside a value.
	ErrShortBuffer = errors.New("msgpack: unexpected end of input")
	// ErrType means a value had another MessagePack type than expected.
	ErrType = errors.New("msgpack: unexpected type")
	// ErrOverflow means an integer does not fit the field.
	ErrOverflow = errors.New("msgpack: integer overflow")
	// ErrFrame means a batch or reply frame is not shaped as the contract says.
	ErrFrame = errors.New("malformed frame")
)

func typeError(want string, code byte) error {
	return fmt.Errorf("%w: want %s, got code 0x%02x", ErrType, want, code)
}
