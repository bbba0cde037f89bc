package admit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sluice-dev/sluice/schemas"
)

// ErrKeysFile wraps every problem of a keys file: the gateway does not start
// with a bad one.
var ErrKeysFile = errors.New("invalid keys file")

// Key is one client's entry in the keys file. Keys are stored hashed: the
// file holds the hex SHA-256 of the key, never the key.
type Key struct {
	// Client names the client in metrics and logs.
	Client string `json:"client"`
	// SHA256 is the hex SHA-256 of the API key (see `sluice keys hash`).
	SHA256 string `json:"sha256"`
	// Rate is the client's sustained requests per second; 0 means unlimited.
	Rate float64 `json:"rate"`
	// Burst is the token bucket's size; default max(1, Rate).
	Burst int `json:"burst"`
	// MaxPriority is the highest priority the client may ask for; default
	// "normal".
	MaxPriority string `json:"max_priority"`
	// Types the client may publish; empty means all.
	Types []string `json:"types"`
	// Subscribe lists the types the client may subscribe to (GET
	// /v1/streams/{type}); empty means none.
	Subscribe []string `json:"subscribe"`
}

// KeysFile is the JSON document of --keys-file.
type KeysFile struct {
	Keys []Key `json:"keys"`
}

// HashKey returns the hex SHA-256 of an API key, as stored in a keys file.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// LoadKeys reads and validates a keys file.
func LoadKeys(path string) (*KeysFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeysFile, err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var kf KeysFile
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeysFile, path, err)
	}
	if err := kf.Validate(); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeysFile, path, err)
	}
	return &kf, nil
}

// Validate checks every entry.
func (kf *KeysFile) Validate() error {
	if len(kf.Keys) == 0 {
		return errors.New("no keys")
	}
	seen := map[string]bool{}
	for i, k := range kf.Keys {
		where := fmt.Sprintf("key %d (%q)", i, k.Client)
		h := strings.ToLower(k.SHA256)
		switch {
		case k.Client == "":
			return fmt.Errorf("%s: client is required", where)
		case len(h) != 64 || !isHex(h):
			return fmt.Errorf("%s: sha256 must be 64 hex digits (the SHA-256 of the key, see 'sluice keys hash')", where)
		case seen[h]:
			return fmt.Errorf("%s: the same key is listed twice", where)
		case k.Rate < 0 || k.Burst < 0:
			return fmt.Errorf("%s: rate and burst must not be negative", where)
		}
		seen[h] = true
		if k.MaxPriority != "" {
			if _, ok := ParsePriority(k.MaxPriority); !ok {
				return fmt.Errorf("%s: max_priority %q is not low, normal, high or critical", where, k.MaxPriority)
			}
		}
		for _, t := range append(k.Types[:len(k.Types):len(k.Types)], k.Subscribe...) {
			if _, ok := schemas.ParseKind(t); !ok {
				return fmt.Errorf("%s: unknown type %q", where, t)
			}
		}
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
