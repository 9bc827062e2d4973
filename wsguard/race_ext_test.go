//go:build race

package wsguard_test

// raceDetector is whether the race detector is on: it turns off some of
// the compiler's optimizations, so that counts of allocations differ.
const raceDetector = true
