package data

import "math"

// splitmix is the SplitMix64 generator. The synthetic dataset uses it rather
// than math/rand so that its values are fixed by this file alone, whatever
// the Go version.
type splitmix struct{ s uint64 }

// newStream returns the generator for one (seed, stream, index) triple, so
// that every meme has its own independent stream and memes can be generated
// in parallel in any order.
func newStream(seed, stream, index uint64) *splitmix {
	r := &splitmix{s: seed ^ 0x6a09e667f3bcc909}
	r.s = r.next() ^ stream*0xbb67ae8584caa73b
	r.s = r.next() ^ index*0x3c6ef372fe94f82b
	r.next()
	return r
}

func (r *splitmix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// float returns a uniform value in [0, 1).
func (r *splitmix) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn returns a uniform value in [0, n) for 0 < n < 2^32.
func (r *splitmix) intn(n int) int { return int((r.next() >> 32) * uint64(n) >> 32) }

// norm returns a standard normal value by the ziggurat method of Marsaglia
// and Tsang (2000), 128 layers: one 64-bit draw gives a 32-bit sample for
// the fast path (about 99% of draws), so the generator needs no logarithm
// most of the time.
func (r *splitmix) norm() float64 {
	for {
		hz := int32(uint32(r.next()))
		iz := hz & 127
		if abs32(hz) < zigK[iz] {
			return float64(hz) * zigW[iz]
		}
		x := float64(hz) * zigW[iz]
		if iz == 0 { // the tail beyond zigR
			for {
				x = -math.Log(1-r.float()) / zigR
				y := -math.Log(1 - r.float())
				if y+y >= x*x {
					break
				}
			}
			if hz > 0 {
				return zigR + x
			}
			return -zigR - x
		}
		if zigF[iz]+r.float()*(zigF[iz-1]-zigF[iz]) < math.Exp(-0.5*x*x) {
			return x
		}
	}
}

func abs32(v int32) uint32 {
	if v < 0 {
		return uint32(-int64(v))
	}
	return uint32(v)
}

// Ziggurat tables for the standard normal, 128 layers.
const (
	zigR = 3.442619855899
	zigV = 9.91256303526217e-3
)

var (
	zigK [128]uint32
	zigW [128]float64
	zigF [128]float64
)

func init() {
	const m1 = 1 << 31
	dn, tn := zigR, zigR
	q := zigV / math.Exp(-0.5*dn*dn)
	zigK[0] = uint32(dn / q * m1)
	zigK[1] = 0
	zigW[0] = q / m1
	zigW[127] = dn / m1
	zigF[0] = 1
	zigF[127] = math.Exp(-0.5 * dn * dn)
	for i := 126; i >= 1; i-- {
		dn = math.Sqrt(-2 * math.Log(zigV/dn+math.Exp(-0.5*dn*dn)))
		zigK[i+1] = uint32(dn / tn * m1)
		tn = dn
		zigF[i] = math.Exp(-0.5 * dn * dn)
		zigW[i] = dn / m1
	}
}

// perm returns a uniformly random permutation of [0, n) (Fisher–Yates).
func (r *splitmix) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
