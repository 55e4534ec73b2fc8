package report

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// CodeVersion describes the code that wrote the report, from the build
// information the Go toolchain embeds: the main module's version and, when
// built from a git checkout, the commit, its time and whether the tree had
// uncommitted changes.
func CodeVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	v := bi.Main.Path
	if bi.Main.Version != "" {
		v += " " + bi.Main.Version
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " (commit " + rev
		if at != "" {
			v += " of " + at
		}
		v += dirty + ")"
	}
	return strings.TrimSpace(v + ", " + bi.GoVersion)
}

// Machine describes the machine that wrote the report: CPU model, logical
// cores, OS and architecture.
func Machine() string {
	return cpuModel() + ", " + strconv.Itoa(runtime.NumCPU()) + " logical cores, " + runtime.GOOS + "/" + runtime.GOARCH
}

// cpuModel reads the CPU model name from /proc/cpuinfo (Linux); elsewhere,
// or when it has none, the architecture.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH + " CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name", "Model", "cpu model", "uarch":
			if v = strings.TrimSpace(v); v != "" {
				return strings.Join(strings.Fields(v), " ")
			}
		}
	}
	return runtime.GOARCH + " CPU"
}
