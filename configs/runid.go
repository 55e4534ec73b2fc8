package configs

import (
	"math/rand/v2"
	"time"
)

const runIDAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewRunID returns a fresh run id such as "20261128-083412-ab12cd": the UTC time to the second,
// then six random lowercase letters and digits (36^6 ≈ 2.2e9 values, so ids made in the same second
// collide with probability about n²/4.4e9). A nil rng draws from the runtime's random source.
func NewRunID(now time.Time, rng *rand.Rand) string {
	b := make([]byte, 0, 22)
	b = now.UTC().AppendFormat(b, "20060102-150405-")
	for range 6 {
		var n int
		if rng != nil {
			n = rng.IntN(len(runIDAlphabet))
		} else {
			n = rand.IntN(len(runIDAlphabet))
		}
		b = append(b, runIDAlphabet[n])
	}
	return string(b)
}
