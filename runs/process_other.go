//go:build !unix

package runs

// processAlive cannot tell on this platform, so it never reports a crash.
func processAlive(int) bool { return true }
