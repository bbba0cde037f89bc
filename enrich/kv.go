package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Reference data in a JetStream key-value bucket: one key per instrument,
// instrument.<token> where the token is the symbol with '.' replaced by '_'
// (NATS uses '.' to separate tokens), and one per FX rate, fx.<currency>.
// Values are the JSON of a [schemas.Instrument] or a [schemas.FXRate]; an
// instrument's value holds its real symbol.
const (
	instrumentKeyPrefix = "instrument."
	fxKeyPrefix         = "fx."
	bucketSuffix        = "_refdata"
	bucketDescription   = "sluice reference data: instrument.<symbol> and fx.<currency> keys, JSON values"
)

// BucketName returns the name of the reference-data bucket of the pipeline
// with the given subject prefix: prefix + "_refdata", where every character of
// prefix that a bucket name does not allow (anything but A-Z a-z 0-9 _ -) is
// replaced by '_'. BucketName("sluice") is "sluice_refdata".
func BucketName(prefix string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, prefix) + bucketSuffix
}

// InstrumentKey returns the key of the instrument listed as symbol:
// InstrumentKey("BRK.B") is "instrument.BRK_B". Two symbols that differ only
// by '.' and '_' share a key; [Upload] refuses such a pair.
func InstrumentKey(symbol string) string {
	return instrumentKeyPrefix + strings.ReplaceAll(symbol, ".", "_")
}

// FXKey returns the key of the USD rate of currency: FXKey("GBX") is
// "fx.GBX".
func FXKey(currency string) string {
	return fxKeyPrefix + currency
}

// Upload writes rd into the bucket, creating it if it does not exist (or
// updating its configuration to keep one revision per key), and returns how
// many keys it wrote: one per instrument and one per FX rate.
//
// rd is validated first ([RefData.Validate]); nothing is written when it is
// invalid. Upload is not atomic: on error some keys are written and the count
// says how many, and a [Watcher] may apply the first keys before the last are
// written. Keys in the bucket that rd does not list are left in place.
func Upload(ctx context.Context, js jetstream.JetStream, bucket string, rd *RefData) (int, error) {
	return UploadReplicated(ctx, js, bucket, rd, 1)
}

// UploadReplicated is [Upload] into a bucket kept on replicas JetStream
// servers (1, or 3 on a three-node cluster, so that workers load reference
// data while any one node is down). Replicas 0 keeps an existing bucket's
// replicas and creates a new one with 1: reloading the data without saying
// how many copies must not shrink a replicated bucket.
func UploadReplicated(ctx context.Context, js jetstream.JetStream, bucket string, rd *RefData, replicas int) (int, error) {
	if replicas < 0 {
		return 0, fmt.Errorf("uploading reference data: %d replicas", replicas)
	}
	if replicas == 0 {
		replicas = 1
		if kv, err := js.KeyValue(ctx, bucket); err == nil {
			st, err := kv.Status(ctx)
			if err != nil {
				return 0, fmt.Errorf("reading reference data bucket %q: %w", bucket, err)
			}
			if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
				replicas = bs.StreamInfo().Config.Replicas
			}
		} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return 0, fmt.Errorf("reading reference data bucket %q: %w", bucket, err)
		}
	}
	if err := rd.Validate(); err != nil {
		return 0, fmt.Errorf("uploading reference data: %w", err)
	}
	if err := checkKeys(rd); err != nil {
		return 0, fmt.Errorf("uploading reference data: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: bucketDescription,
		History:     1,
		Replicas:    replicas,
	})
	if err != nil {
		return 0, fmt.Errorf("creating reference data bucket %q: %w", bucket, err)
	}
	n := 0
	for _, in := range rd.Instruments {
		if err := put(ctx, kv, InstrumentKey(in.Symbol), in); err != nil {
			return n, err
		}
		n++
	}
	for _, fx := range rd.FX {
		if err := put(ctx, kv, FXKey(fx.Currency), fx); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func put(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %q: %w", key, err)
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("putting %q: %w", key, err)
	}
	return nil
}

// checkKeys reports two instruments whose symbols map to the same key.
func checkKeys(rd *RefData) error {
	seen := make(map[string]string, len(rd.Instruments))
	for _, in := range rd.Instruments {
		key := InstrumentKey(in.Symbol)
		if other, dup := seen[key]; dup {
			return fmt.Errorf("symbols %q and %q both map to key %q", other, in.Symbol, key)
		}
		seen[key] = in.Symbol
	}
	return nil
}
