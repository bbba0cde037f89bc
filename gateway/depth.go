package gateway

// A batcher keeps its share of its group's depth ([admit.Group]: the
// events of the group's kinds that no worker has taken yet) in these steps
// alone, called by the batcher and its [framePublisher]:
//
//   - held, from add until the batch is published ([admit.Group.Local]);
//   - core: sent, from the publish until a worker's done frame names the
//     batch or it is presumed lost ([outstanding]);
//   - durable: unacknowledged, from the publish until the stream's ack;
//     then stored, in the consumer's backlog that the workers report
//     ([admit.Group.Stored]), or, refused, never promised.
//
// The sent and unacknowledged counts reach the group through the origin
// that [New] registers for the batcher ([admit.Group.AddOrigin]).

// held counts n more events (n < 0: fewer) in the batch being filled.
func (b *batcher) held(n int) {
	if b.group != nil {
		b.group.Local(n)
	}
}

// sentCore moves f's events from held to sent, at f.sent.
func (b *batcher) sentCore(f *batch) {
	b.held(-f.n)
	b.out.sent(f.gen, int64(f.n), f.sent)
}

// refusedCore takes f's events out of sent: NATS refused the publish.
func (b *batcher) refusedCore(f *batch) { b.out.done(f.gen) }

// sentDurable moves f's events from held to unacknowledged.
func (b *batcher) sentDurable(f *batch) {
	b.unacked.Add(int64(f.n))
	b.held(-f.n)
}

// ackedDurable takes f's events out of unacknowledged: into the stream's
// backlog when it stored f, out of the depth when it refused f.
func (b *batcher) ackedDurable(f *batch, stored bool) {
	b.unacked.Add(-int64(f.n))
	if stored && b.group != nil {
		b.group.Stored(f.n)
	}
}
