package h2edge

import "strconv"

// answerCache keeps the header block of the connection's last fast answer
// (its :status, fields and date, without content-length) when every field
// of it was encoded as an index into the HPACK tables: such a block
// changed neither table, so as long as no other block has been encoded
// since (gen), the encoder would write the same bytes again for the same
// fields, and they are copied instead of searched for field by field.
// content-length is not part of it: it goes after the cached bytes as a
// literal that is never added to the dynamic table (its values vary from
// answer to answer and would only evict the fields that repeat).
type answerCache struct {
	ok     bool
	gen    uint64 // conn.hgen when the block was encoded
	status int
	date   string
	fields []string // name, value pairs, as given to writeFields
	block  []byte
}

// match reports whether the cached block encodes status, fields and date
// for a connection whose encoder is at gen. fields may come in another
// order than the cached ones (they come from a map): each pair is matched
// to the first unused cached pair of the same name, so that the values of
// one name keep their order.
func (c *answerCache) match(gen uint64, status int, date string, fields []string) bool {
	if !c.ok || c.gen != gen || c.status != status || c.date != date || len(c.fields) != len(fields) || len(fields) > 128 {
		return false
	}
	var used [2]uint64
next:
	for i := 0; i+1 < len(fields); i += 2 {
		for j := 0; j+1 < len(c.fields); j += 2 {
			k := j / 2
			if used[k/64]&(1<<(k%64)) != 0 || c.fields[j] != fields[i] {
				continue
			}
			if c.fields[j+1] != fields[i+1] {
				return false
			}
			used[k/64] |= 1 << (k % 64)
			continue next
		}
		return false
	}
	return true
}

// store keeps block as the encoding of status, fields and date at gen, if
// it is made of indexed fields only (RFC 7541, 6.1); otherwise the cache
// is emptied.
func (c *answerCache) store(gen uint64, status int, date string, fields []string, block []byte) {
	c.ok = allIndexed(block)
	if !c.ok {
		return
	}
	c.gen, c.status, c.date = gen, status, date
	c.fields = append(c.fields[:0], fields...)
	c.block = append(c.block[:0], block...)
}

// allIndexed reports whether block holds only indexed header field
// representations: a first byte with the high bit set and a 7-bit prefix
// integer (continuation bytes while the high bit is set, RFC 7541, 5.1).
func allIndexed(block []byte) bool {
	for i := 0; i < len(block); {
		b := block[i]
		i++
		if b&0x80 == 0 {
			return false
		}
		if b&0x7f != 0x7f {
			continue
		}
		for {
			if i >= len(block) {
				return false
			}
			b = block[i]
			i++
			if b&0x80 == 0 {
				break
			}
		}
	}
	return true
}

// appendContentLength appends content-length: n as a literal header field
// without indexing whose name is the static table's entry 28 (RFC 7541,
// 6.2.2 and appendix A): the dynamic table is not touched.
func appendContentLength(b []byte, n int64) []byte {
	var d [20]byte
	v := strconv.AppendInt(d[:0], n, 10)
	// 0000 then the index 28 in a 4-bit prefix: 15, then 28-15.
	b = append(b, 0x0f, 28-15, byte(len(v))) // a string of up to 20 bytes, not Huffman coded
	return append(b, v...)
}
