package kubelet

import "testing"

func TestMilliCPUToShares(t *testing.T) {
	for _, c := range []struct{ milli, want int64 }{
		{0, 2}, {-5, 2}, {1, 2}, {2, 2}, {100, 102}, {500, 512}, {1500, 1536}, {4000, 4096},
		{256000, 262144}, {256001, 262144}, {1000000, 262144},
	} {
		if got := MilliCPUToShares(c.milli); got != c.want {
			t.Errorf("MilliCPUToShares(%d) = %d, want %d", c.milli, got, c.want)
		}
	}
}

func TestMilliCPUToQuota(t *testing.T) {
	for _, c := range []struct{ milli, want int64 }{
		{0, 0}, {-1, 0}, {1, 1000}, {9, 1000}, {10, 1000}, {100, 10000}, {1500, 150000}, {1000000, 100000000},
	} {
		if got := MilliCPUToQuota(c.milli, QuotaPeriod); got != c.want {
			t.Errorf("MilliCPUToQuota(%d) = %d, want %d", c.milli, got, c.want)
		}
	}
}

func TestOOMScoreAdj(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		qos      string
		mem, cap int64
		want     int64
	}{
		{Guaranteed, gib, 64 * gib, -997},
		{BestEffort, 0, 64 * gib, 1000},
		{Burstable, 32 * gib, 64 * gib, 500},
		{Burstable, 64 * gib, 64 * gib, 3},
		// With a capacity of 1000 bytes, adj = 1000 − request.
		{Burstable, 0, 1000, 999}, // 1000 is BestEffort's: 999
		{Burstable, 1, 1000, 999},
		{Burstable, 2, 1000, 998},
		{Burstable, 996, 1000, 4},
		{Burstable, 997, 1000, 3},
		{Burstable, 998, 1000, 3}, // 2 → the floor, 3 (not 2)
		{Burstable, 999, 1000, 3},
		{Burstable, 2000, 1000, 3}, // a request over capacity
		{Burstable, gib, 0, 999},   // no capacity known
	} {
		if got := OOMScoreAdj(c.qos, c.mem, c.cap); got != c.want {
			t.Errorf("OOMScoreAdj(%s, %d, %d) = %d, want %d", c.qos, c.mem, c.cap, got, c.want)
		}
	}
}
