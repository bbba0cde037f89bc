package gateway

import (
	"crypto/rand"
	"sync/atomic"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// idGen makes event ids that are unique across gateways and restarts
// without coordination: a random 12-character base62 prefix per process
// (about 71 bits) followed by a per-process counter in base62. One atomic
// add reserves the ids of a whole request.
type idGen struct {
	prefix [12]byte
	seq    atomic.Uint64
}

func newIDGen() *idGen {
	g := &idGen{}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	for i, b := range rnd {
		g.prefix[i] = base62[int(b)%len(base62)]
	}
	return g
}

// maxIDLen bounds the length of one id: prefix plus 11 base62 digits.
const maxIDLen = 12 + 11

// reserve returns the first of n consecutive sequence numbers.
func (g *idGen) reserve(n int) uint64 { return g.seq.Add(uint64(n)) - uint64(n) }

// appendID appends the id of sequence number seq to b.
func (g *idGen) appendID(b []byte, seq uint64) []byte {
	b = append(b, g.prefix[:]...)
	var tmp [11]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = base62[seq%62]
		seq /= 62
		if seq == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}
