package clip

// UseAssembly switches the AVX2 kernels on or off and returns a function
// restoring the previous setting (tests only).
func UseAssembly(on bool) (restore func()) {
	old := useAVX2
	useAVX2 = on && old
	return func() { useAVX2 = old }
}
