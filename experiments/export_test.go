package experiments

// SetMaxFusedBatch sets the fused-batch limit for a test and returns a
// function restoring it.
func SetMaxFusedBatch(n int) (restore func()) {
	old := maxFusedBatch
	maxFusedBatch = n
	return func() { maxFusedBatch = old }
}
