package bench_test

import (
	"net/netip"
	"testing"

	"github.com/sockit/sockit/bench"
)

// FuzzParseSources: never panics, never returns more than 65536 addresses
// per range, and whatever it accepts is valid addresses.
func FuzzParseSources(f *testing.F) {
	for _, s := range []string{"127.0.0.2", "127.0.0.2-127.0.0.9", "::1", "[::1]-[::3]", "10.0.0.1,10.0.0.5-10.0.0.6", "127.0.0.9-127.0.0.2", "1.2.3.4-::1", "", ",", "0.0.0.0-255.255.255.255", "fe80::1%eth0-fe80::2%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := bench.ParseSources(s)
		if err != nil {
			if addrs != nil {
				t.Fatalf("ParseSources(%q) = %v with error %v", s, addrs, err)
			}
			return
		}
		if len(addrs) == 0 {
			t.Fatalf("ParseSources(%q): no addresses and no error", s)
		}
		for _, a := range addrs {
			if !a.IsValid() || a != netip.MustParseAddr(a.String()) {
				t.Fatalf("ParseSources(%q): bad address %v", s, a)
			}
		}
	})
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"echo", "pipeline", "send", "connect", "idle", "udp", "", "ECHO", "echo "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := bench.ParseMode(s)
		if (err == nil) != (string(m) == s && s != "") {
			t.Fatalf("ParseMode(%q) = %q, %v", s, m, err)
		}
	})
}
