//go:build ignore

// gen.go compiles mami.cu to PTX with nvcc and stamps each file with the source's SHA-256.
// Run it through `go generate ./models/cuda/kernels` (it runs in this directory).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
)

func main() {
	src, err := os.ReadFile("mami.cu")
	if err != nil {
		fail(err)
	}
	sum := sha256.Sum256(src)
	stamp := "// mami.cu sha256 " + hex.EncodeToString(sum[:]) + "\n"
	for _, t := range []struct{ arch, out string }{
		{"sm_90", "mami_sm90.ptx"},
		{"compute_80", "mami_compute80.ptx"},
	} {
		tmp := t.out + ".tmp"
		args := []string{"-ptx", "-O3", "-arch=" + t.arch, "-o", tmp, "mami.cu"}
		if cc, err := exec.LookPath("g++-11"); err == nil { // nvcc 11.8 refuses newer host compilers
			args = append([]string{"-ccbin", cc}, args...)
		}
		cmd := exec.Command("nvcc", args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fail(fmt.Errorf("nvcc -arch=%s: %w (install nvcc: Debian's nvidia-cuda-toolkit)", t.arch, err))
		}
		ptx, err := os.ReadFile(tmp)
		if err != nil {
			fail(err)
		}
		if err := os.WriteFile(t.out, append([]byte(stamp), ptx...), 0o644); err != nil {
			fail(err)
		}
		if err := os.Remove(tmp); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}
