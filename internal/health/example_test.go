package health_test

import (
	"fmt"

	"github.com/rowgear/rowgear/internal/health"
)

// A bare port listens on loopback only; name a host to listen elsewhere.
func ExampleListenAddr() {
	for _, a := range []string{"9100", ":9100", "0.0.0.0:9100"} {
		addr, _ := health.ListenAddr(a)
		fmt.Println(a, "→", addr)
	}
	// Output:
	// 9100 → 127.0.0.1:9100
	// :9100 → 127.0.0.1:9100
	// 0.0.0.0:9100 → 0.0.0.0:9100
}
