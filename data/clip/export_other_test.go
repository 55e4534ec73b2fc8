//go:build !amd64

package clip

// UseAssembly is a no-op where there are no assembly kernels.
func UseAssembly(on bool) (restore func()) { return func() {} }
