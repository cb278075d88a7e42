package plugin

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/numaspread/numaspread/config"
	"github.com/numaspread/numaspread/topology/synth"
)

// BenchmarkCreateStopWithSharedContainers measures the handler cost (no
// NRI transport) of placing and stopping an exclusive container while n
// shared containers must follow the pool: each op builds 2·n updates.
func BenchmarkCreateStopWithSharedContainers(b *testing.B) {
	for _, n := range []int{0, 100, 500} {
		b.Run(fmt.Sprintf("shared=%d", n), func(b *testing.B) {
			log := logrus.New()
			log.SetOutput(io.Discard)
			p, err := New(synth.EightNode512().MustTopology(), config.Default(), log)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for i := 0; i < n; i++ {
				c := shared(fmt.Sprintf("s%d", i), "")
				if _, _, err := p.CreateContainer(ctx, pods(c)[0], c); err != nil {
					b.Fatal(err)
				}
			}
			c := guaranteed("x", 2, "", 1)
			pod := pods(c)[0]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := p.CreateContainer(ctx, pod, c); err != nil {
					b.Fatal(err)
				}
				if _, err := p.StopContainer(ctx, pod, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
