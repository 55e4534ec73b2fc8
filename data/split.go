package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// streamSplit is the generator stream of StratifiedSplit.
const streamSplit = 101

// StratifiedSplit splits the indices of labels into train, validation and
// test parts that keep the class proportions. The test part holds
// round(testFrac·N) memes; the validation part round(valFrac·(N−test)) of
// the rest; each part's size is shared among the classes by largest
// remainder, so 10,000 balanced memes with valFrac 0.1 and testFrac 0.2 give
// exactly 7,200 / 800 / 2,000. The split depends only on the labels, the
// fractions and seed (a fixed SplitMix64 stream, stable across Go
// versions). Each part is sorted ascending. Fractions outside [0, 1) are
// clamped.
func StratifiedSplit(labels []int, valFrac, testFrac float64, seed int64) (train, val, test []int) {
	valFrac = clampFrac(valFrac)
	testFrac = clampFrac(testFrac)
	classes := map[int][]int{}
	var keys []int
	for i, y := range labels {
		if _, ok := classes[y]; !ok {
			keys = append(keys, y)
		}
		classes[y] = append(classes[y], i)
	}
	sort.Ints(keys)
	r := newStream(uint64(seed), streamSplit, 0)
	members := make([][]int, len(keys))
	for k, y := range keys {
		idx := classes[y]
		for _, p := range r.perm(len(idx)) {
			members[k] = append(members[k], idx[p])
		}
	}
	n := len(labels)
	sizes := make([]int, len(keys))
	for k := range keys {
		sizes[k] = len(members[k])
	}
	nTest := int(math.Round(testFrac * float64(n)))
	testK := apportion(nTest, sizes)
	rest := make([]int, len(keys))
	for k := range keys {
		rest[k] = sizes[k] - testK[k]
	}
	nVal := int(math.Round(valFrac * float64(n-nTest)))
	valK := apportion(nVal, rest)
	for k := range keys {
		m := members[k]
		test = append(test, m[:testK[k]]...)
		val = append(val, m[testK[k]:testK[k]+valK[k]]...)
		train = append(train, m[testK[k]+valK[k]:]...)
	}
	sort.Ints(train)
	sort.Ints(val)
	sort.Ints(test)
	return train, val, test
}

func clampFrac(f float64) float64 {
	if math.IsNaN(f) || f < 0 {
		return 0
	}
	return min(f, 1)
}

// apportion shares total among groups in proportion to sizes by the
// largest-remainder method (ties to the earlier group), never giving a
// group more than its size.
func apportion(total int, sizes []int) []int {
	sum := 0
	for _, s := range sizes {
		sum += s
	}
	out := make([]int, len(sizes))
	if sum == 0 || total <= 0 {
		return out
	}
	total = min(total, sum)
	type rem struct {
		k int
		r float64
	}
	var rems []rem
	given := 0
	for k, s := range sizes {
		exact := float64(total) * float64(s) / float64(sum)
		out[k] = int(math.Floor(exact))
		given += out[k]
		rems = append(rems, rem{k, exact - float64(out[k])})
	}
	sort.SliceStable(rems, func(i, j int) bool { return rems[i].r > rems[j].r })
	for i := 0; given < total; i = (i + 1) % len(rems) {
		if k := rems[i].k; out[k] < sizes[k] {
			out[k]++
			given++
		}
	}
	return out
}

// NewRand returns the generator to pass to [Batches] for a run seeded with
// seed (a PCG stream).
func NewRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x6d616d692d626174))
}

// Batches returns one epoch of minibatches over n samples: a fresh random
// permutation from rng cut into batches of size batch (the last one may be
// shorter). Calling it again with the same rng reshuffles, so a run draws
// every epoch's order from one generator seeded once. It fails when n < 0
// or batch ≤ 0.
func Batches(n, batch int, rng *rand.Rand) ([][]int, error) {
	if n < 0 || batch <= 0 {
		return nil, fmt.Errorf("batches: %d samples in batches of %d: want n ≥ 0 and batch > 0", n, batch)
	}
	perm := rng.Perm(n)
	out := make([][]int, 0, (n+batch-1)/batch)
	for lo := 0; lo < n; lo += batch {
		out = append(out, perm[lo:min(lo+batch, n)])
	}
	return out, nil
}
