package h2edge

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// blockReader decodes header blocks as x/net's Framer does with
// ReadMetaHeaders (its readMetaFrame: the same checks, errors and
// bounds), into state kept across blocks: the MetaHeadersFrame, its
// fields and the emit function are the connection's, not allocated per
// request. A block's MetaHeadersFrame is valid until the next is read.
type blockReader struct {
	dec     *hpack.Decoder
	mh      http2.MetaHeadersFrame
	fields  []hpack.HeaderField
	max     uint32 // MaxHeaderListSize
	remain  uint32 // header list bytes left
	tremain uint32 // trailer bytes left
	regular bool   // a regular field was seen
	invalid error
}

var errPseudoAfterRegular = errors.New("pseudo header field after regular")

func newBlockReader(max uint32) *blockReader {
	hb := &blockReader{max: max}
	hb.dec = hpack.NewDecoder(4096, hb.emit)
	hb.dec.SetMaxStringLength(int(max))
	return hb
}

func (hb *blockReader) emit(hf hpack.HeaderField) {
	if !httpguts.ValidHeaderFieldValue(hf.Value) {
		// The value stays out of the error: it may be sensitive.
		hb.invalid = fmt.Errorf("invalid header field value for %q", hf.Name)
	}
	if strings.HasPrefix(hf.Name, ":") {
		if hb.regular {
			hb.invalid = errPseudoAfterRegular
		}
	} else {
		hb.regular = true
		if !validWireName(hf.Name) {
			hb.invalid = fmt.Errorf("invalid header field name %q", hf.Name)
		}
	}
	if hb.invalid != nil {
		hb.dec.SetEmitEnabled(false)
		return
	}
	remain, size := &hb.remain, hf.Size()
	if hf.Name == "trailer" {
		remain = &hb.tremain
		n := strings.Count(hf.Value, ",") + 1
		size = uint32(len(hf.Value)-n+1) + uint32(n)*hpack.HeaderField{}.Size()
	}
	if size > *remain {
		hb.dec.SetEmitEnabled(false)
		hb.mh.Truncated = true
		hb.remain, hb.tremain = 0, 0
		return
	}
	*remain -= size
	hb.fields = append(hb.fields, hf)
}

// validWireName is x/net's validWireHeaderFieldName: a token, lower case.
func validWireName(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if !httpguts.IsTokenRune(r) || ('A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}

// read decodes the block that hf begins, reading its CONTINUATION frames
// from fr. Its results are readMetaFrame's: a frame and a connection
// error for a block that cannot be decoded (the HPACK state is lost), no
// frame and a stream error for a request whose fields are malformed.
func (hb *blockReader) read(fr *http2.Framer, hf *http2.HeadersFrame) (http2.Frame, error) {
	clear(hb.fields)
	hb.fields = hb.fields[:0]
	hb.mh = http2.MetaHeadersFrame{HeadersFrame: hf}
	hb.remain, hb.tremain, hb.regular, hb.invalid = hb.max, hb.max, false, nil
	hb.dec.SetEmitEnabled(true)
	frag, ended := hf.HeaderBlockFragment(), hf.HeadersEnded()
	for {
		// A fragment far past what is left, or anything after an
		// invalid field, ends the connection (readMetaFrame's bounds).
		if int64(len(frag)) > 2*int64(hb.remain+hb.tremain) || hb.invalid != nil {
			return &hb.mh, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := hb.dec.Write(frag); err != nil {
			return &hb.mh, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		c := f.(*http2.ContinuationFrame) // the Framer checks the order
		frag, ended = c.HeaderBlockFragment(), c.HeadersEnded()
	}
	if err := hb.dec.Close(); err != nil {
		return &hb.mh, http2.ConnectionError(http2.ErrCodeCompression)
	}
	hb.mh.Fields = hb.fields
	if hb.invalid != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: hb.invalid}
	}
	if err := checkPseudos(hb.fields); err != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: err}
	}
	return &hb.mh, nil
}

// checkPseudos is x/net's MetaHeadersFrame.checkPseudos: known pseudo
// fields, none twice, not request and response ones mixed.
func checkPseudos(fields []hpack.HeaderField) error {
	var request, response bool
	for i, hf := range fields {
		if !hf.IsPseudo() {
			break
		}
		switch hf.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			request = true
		case ":status":
			response = true
		default:
			return fmt.Errorf("invalid pseudo-header %q", hf.Name)
		}
		for _, hf2 := range fields[:i] {
			if hf.Name == hf2.Name {
				return fmt.Errorf("duplicate pseudo-header %q", hf.Name)
			}
		}
	}
	if request && response {
		return errors.New("mix of request and response pseudo headers")
	}
	return nil
}
