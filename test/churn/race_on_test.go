//go:build race

package churn

// raceEnabled: the race detector slows the churn by 5-10×; tests shrink.
const raceEnabled = true
