package schemas

// Partition returns the partition of symbol among p: the 32-bit FNV-1a hash
// of its bytes modulo p, so that every component (gateways, tests, tools)
// maps a symbol to the same partition without asking. It returns 0 when p
// is 1 or less. It does not allocate.
//
// In durable mode a type's batches are published per partition
// (<prefix>.ingest.<type>.<partition>), and each partition is processed
// one batch at a time: the events of one symbol keep their ingest order.
// Changing p moves symbols to other partitions, so p is fixed for the life
// of the ingest stream.
func Partition(symbol string, p int) int {
	if p <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(symbol); i++ {
		h ^= uint32(symbol[i])
		h *= 16777619
	}
	return int(h % uint32(p))
}
