package churn

import (
	"runtime"
	"runtime/debug"
)

// takeSample measures the process after a full garbage collection that
// also returns freed memory to the OS, so that RSS reflects live data.
func takeSample() Sample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Sample{RSS: rssBytes(), HeapInuse: ms.HeapInuse, Goroutines: runtime.NumGoroutine()}
}
