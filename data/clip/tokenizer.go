package clip

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Special token ids and sizes of the CLIP vocabulary.
const (
	StartOfText   = 49406 // id of <|startoftext|>
	EndOfText     = 49407 // id of <|endoftext|>
	ContextLength = 77    // the text tower's context
	// numMerges is how many merges the reference reads (49152-256-2).
	numMerges = 48894
)

// bpePattern is CLIP's pre-split regex (applied after lowercasing).
var bpePattern = regexp.MustCompile(`(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`)

// Tokenizer is CLIP's byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	vocab    map[string]int32
	byteSym  [256]int32 // id of each byte's symbol
	byteEnd  [256]int32 // id of each byte's symbol with </w>
	byteRune [256]rune  // GPT-2 byte-to-unicode table
	merges   map[uint64]merge
	pairs    [][2]string // merges in rank order

	mu    sync.Mutex
	cache map[string][]int32
}

type merge struct{ rank, id int32 }

const maxCache = 1 << 16

// byteToUnicode returns GPT-2's reversible byte→rune table and the byte order
// in which the reference enumerates it (printable bytes first).
func byteToUnicode() (table [256]rune, order []byte) {
	for b := 33; b <= 126; b++ {
		order = append(order, byte(b))
	}
	for b := 161; b <= 172; b++ {
		order = append(order, byte(b))
	}
	for b := 174; b <= 255; b++ {
		order = append(order, byte(b))
	}
	printable := make(map[byte]bool, len(order))
	for _, b := range order {
		printable[b] = true
		table[b] = rune(b)
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !printable[byte(b)] {
			order = append(order, byte(b))
			table[b] = rune(256 + n)
			n++
		}
	}
	return table, order
}

// LoadTokenizer loads a tokenizer from path: either a directory holding
// vocab.json and merges.txt (Hugging Face layout) or CLIP's original
// bpe_simple_vocab_16e6.txt.gz (a directory holding only that file works too).
func LoadTokenizer(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	if !st.IsDir() {
		return loadBPEGzip(path)
	}
	vocab := filepath.Join(path, "vocab.json")
	if _, err := os.Stat(vocab); err == nil {
		return loadVocabMerges(vocab, filepath.Join(path, "merges.txt"))
	}
	gz := filepath.Join(path, "bpe_simple_vocab_16e6.txt.gz")
	if _, err := os.Stat(gz); err == nil {
		return loadBPEGzip(gz)
	}
	return nil, fmt.Errorf("load tokenizer %s: no vocab.json+merges.txt or bpe_simple_vocab_16e6.txt.gz", path)
}

func loadBPEGzip(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	pairs, err := readMerges(zr, path)
	if err != nil {
		return nil, err
	}
	table, order := byteToUnicode()
	vocab := make(map[string]int32, 49408)
	for _, b := range order {
		vocab[string(table[b])] = int32(len(vocab))
	}
	for _, b := range order {
		vocab[string(table[b])+"</w>"] = int32(len(vocab))
	}
	for _, p := range pairs {
		vocab[p[0]+p[1]] = int32(len(vocab))
	}
	vocab["<|startoftext|>"] = int32(len(vocab))
	vocab["<|endoftext|>"] = int32(len(vocab))
	return newTokenizer(vocab, pairs, path)
}

// readMerges reads the merge list: a header line (skipped), then up to
// numMerges lines of two space-separated symbols.
func readMerges(r io.Reader, name string) ([][2]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	var pairs [][2]string
	line := 0
	for sc.Scan() && len(pairs) < numMerges {
		line++
		text := sc.Text()
		if line == 1 {
			continue // the version header; the reference skips line 0 whatever it holds
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			break // the reference stops at the first empty line too (it is the end of the list)
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("load tokenizer %s: line %d: want 2 symbols, got %d", name, line, len(fields))
		}
		pairs = append(pairs, [2]string{fields[0], fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", name, err)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("load tokenizer %s: no merges", name)
	}
	return pairs, nil
}

func loadVocabMerges(vocabPath, mergesPath string) (*Tokenizer, error) {
	raw, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	var vocab map[string]int32
	if err := json.Unmarshal(raw, &vocab); err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", vocabPath, err)
	}
	f, err := os.Open(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	defer f.Close()
	pairs, err := readMerges(f, mergesPath)
	if err != nil {
		return nil, err
	}
	return newTokenizer(vocab, pairs, mergesPath)
}

func newTokenizer(vocab map[string]int32, pairs [][2]string, name string) (*Tokenizer, error) {
	t := &Tokenizer{vocab: vocab, merges: make(map[uint64]merge, len(pairs)), pairs: pairs, cache: map[string][]int32{}}
	t.byteRune, _ = byteToUnicode()
	for b := 0; b < 256; b++ {
		sym := string(t.byteRune[b])
		id, ok1 := vocab[sym]
		end, ok2 := vocab[sym+"</w>"]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("load tokenizer %s: vocabulary lacks byte symbol %q", name, sym)
		}
		t.byteSym[b], t.byteEnd[b] = id, end
	}
	for _, s := range []string{"<|startoftext|>", "<|endoftext|>"} {
		if _, ok := vocab[s]; !ok {
			return nil, fmt.Errorf("load tokenizer %s: vocabulary lacks %s", name, s)
		}
	}
	for rank, p := range pairs {
		a, okA := vocab[p[0]]
		b, okB := vocab[p[1]]
		ab, okAB := vocab[p[0]+p[1]]
		if !okA || !okB || !okAB {
			return nil, fmt.Errorf("load tokenizer %s: merge %d (%s %s): symbol not in vocabulary", name, rank+1, p[0], p[1])
		}
		key := uint64(uint32(a))<<32 | uint64(uint32(b))
		if _, dup := t.merges[key]; !dup {
			t.merges[key] = merge{rank: int32(rank), id: ab}
		}
	}
	return t, nil
}

// VocabSize returns the number of ids.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// Encode returns the BPE ids of text after CLIP's cleaning, without the
// start and end tokens.
func (t *Tokenizer) Encode(text string) []int {
	clean := cleanText(text)
	var ids []int
	for _, piece := range bpePattern.FindAllString(clean, -1) {
		switch piece {
		case "<|startoftext|>":
			ids = append(ids, StartOfText)
			continue
		case "<|endoftext|>":
			ids = append(ids, EndOfText)
			continue
		}
		for _, id := range t.bpe(piece) {
			ids = append(ids, int(id))
		}
	}
	return ids
}

// Tokenize returns start-of-text, Encode(text) and end-of-text, with no
// padding and no truncation.
func (t *Tokenizer) Tokenize(text string) []int {
	ids := append([]int{StartOfText}, t.Encode(text)...)
	return append(ids, EndOfText)
}

// TokenizeContext returns exactly n ids like the reference's
// tokenize(text, context_length=n, truncate=True): a longer sequence is cut
// to n ids with its last kept id replaced by end-of-text; a shorter one is
// right-padded with 0.
func (t *Tokenizer) TokenizeContext(text string, n int) []int {
	return Pad(t.Tokenize(text), n)
}

// Pad truncates or zero-pads a full id sequence to n ids (see TokenizeContext).
func Pad(ids []int, n int) []int {
	out := make([]int, n)
	if len(ids) > n {
		copy(out, ids[:n])
		out[n-1] = EndOfText
		return out
	}
	copy(out, ids)
	return out
}

// bpe merges one pre-split piece, caching the result.
func (t *Tokenizer) bpe(piece string) []int32 {
	t.mu.Lock()
	if ids, ok := t.cache[piece]; ok {
		t.mu.Unlock()
		return ids
	}
	t.mu.Unlock()

	word := make([]int32, len(piece))
	for i := 0; i < len(piece); i++ {
		word[i] = t.byteSym[piece[i]]
	}
	word[len(word)-1] = t.byteEnd[piece[len(piece)-1]]
	for len(word) > 1 {
		best := merge{rank: -1}
		var bestKey uint64
		for i := 0; i+1 < len(word); i++ {
			key := uint64(uint32(word[i]))<<32 | uint64(uint32(word[i+1]))
			if m, ok := t.merges[key]; ok && (best.rank < 0 || m.rank < best.rank) {
				best, bestKey = m, key
			}
		}
		if best.rank < 0 {
			break
		}
		first, second := int32(bestKey>>32), int32(uint32(bestKey))
		out := word[:0]
		for i := 0; i < len(word); i++ {
			if i+1 < len(word) && word[i] == first && word[i+1] == second {
				out = append(out, best.id)
				i++
				continue
			}
			out = append(out, word[i])
		}
		word = out
	}
	t.mu.Lock()
	if len(t.cache) >= maxCache {
		clear(t.cache)
	}
	t.cache[piece] = word
	t.mu.Unlock()
	return word
}

// WriteVocabMerges writes the tokenizer's vocabulary and merges in the Hugging
// Face layout (vocab.json, merges.txt) into dir.
func (t *Tokenizer) WriteVocabMerges(dir string) error {
	vj, err := json.Marshal(t.vocab)
	if err != nil {
		return fmt.Errorf("write vocab: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vocab.json"), vj, 0o644); err != nil {
		return fmt.Errorf("write vocab: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("#version: 0.2\n")
	for _, p := range t.pairs {
		fmt.Fprintf(&b, "%s %s\n", p[0], p[1])
	}
	if err := os.WriteFile(filepath.Join(dir, "merges.txt"), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write merges: %w", err)
	}
	return nil
}
