// Package suite is numaspread's end-to-end suite: it drives the NRI plugin
// through the mock runtime (test/mockruntime, containerd's own NRI
// adaptation over a real socket), once with the plugin in-process and once
// as the built numaspread binary, and checks the product's invariants after
// every step. It also holds the plugin's round-trip benchmarks.
//
// Everything lives in _test.go files; this file only names the package.
package suite
