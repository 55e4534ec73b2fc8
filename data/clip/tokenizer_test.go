package clip_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/mami-lab/mami/data/clip"
)

// fixtureDir returns ../shared/testdata/clip relative to the repository root.
func fixtureDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "clip")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	return dir
}

type tokCase struct {
	Text          string `json:"text"`
	IDs           []int  `json:"ids"`
	Context77     []int  `json:"context_77"`
	DependsOnFtfy bool   `json:"depends_on_ftfy"`
}

func readTokCases(t testing.TB) []tokCase {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir(t), "tokenizer_cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []tokCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c tokCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if len(cases) != 45 {
		t.Fatalf("got %d tokenizer cases, want 45", len(cases))
	}
	return cases
}

func TestTokenizerCases(t *testing.T) {
	fromGz := tinyBundle(t).Tokenizer
	if got := fromGz.VocabSize(); got != 49408 {
		t.Fatalf("vocab size %d, want 49408", got)
	}
	hf := t.TempDir()
	if err := fromGz.WriteVocabMerges(hf); err != nil {
		t.Fatal(err)
	}
	fromHF, err := clip.LoadTokenizer(hf)
	if err != nil {
		t.Fatal(err)
	}
	cases := readTokCases(t)
	for name, tok := range map[string]*clip.Tokenizer{"gzip": fromGz, "vocab+merges": fromHF} {
		t.Run(name, func(t *testing.T) {
			for _, c := range cases {
				if got := tok.Tokenize(c.Text); !slices.Equal(got, c.IDs) {
					t.Errorf("Tokenize(%q) (ftfy=%v)\n got %v\nwant %v", c.Text, c.DependsOnFtfy, got, c.IDs)
				}
				if got := tok.TokenizeContext(c.Text, clip.ContextLength); !slices.Equal(got, c.Context77) {
					t.Errorf("TokenizeContext(%q, 77)\n got %v\nwant %v", c.Text, got, c.Context77)
				}
			}
		})
	}
}

func TestLoadTokenizerErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "vocab.json"), []byte(`{"a": 0}`), 0o644)
	os.WriteFile(filepath.Join(bad, "merges.txt"), []byte("#version: 0.2\na b\n"), 0o644)
	notgz := filepath.Join(dir, "x.txt.gz")
	os.WriteFile(notgz, []byte("plain"), 0o644)
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(dir, "nope")},
		{"empty dir", t.TempDir()},
		{"vocab lacks bytes", bad},
		{"not gzip", notgz},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := clip.LoadTokenizer(tc.path); err == nil {
				t.Fatalf("LoadTokenizer(%s): got nil error", tc.path)
			}
		})
	}
}

func FuzzTokenize(f *testing.F) {
	tok := tinyBundle(f).Tokenizer
	for _, s := range []string{"", "a photo of a cat", "schÃ¶n", "ＦＵＬＬ", "&amp;amp;", "\x80\xff", "ΟΔΟΣ İ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Tokenize(s)
		if len(ids) < 2 || ids[0] != clip.StartOfText || ids[len(ids)-1] != clip.EndOfText {
			t.Fatalf("Tokenize(%q) = %v: missing start/end", s, ids)
		}
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("Tokenize(%q): id %d out of range", s, id)
			}
		}
		if p := tok.TokenizeContext(s, clip.ContextLength); len(p) != clip.ContextLength || !slices.Contains(p, clip.EndOfText) {
			t.Fatalf("TokenizeContext(%q) = %v", s, p)
		}
	})
}
