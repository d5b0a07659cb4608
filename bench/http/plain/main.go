// Command plainhttp is the baseline of bench/http/compare.sh: the smallest
// idiomatic net/http server answering GET / with <h1>Index</h1>, as sockit's
// http service does, with nothing else in between. It is a module of its own
// so that the main module's builds and tests never see it.
//
//	plainhttp 127.0.0.1:0   # prints "listening tcp://127.0.0.1:PORT"
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<h1>Index</h1>"))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening tcp://%s\n", ln.Addr())
	// The same http.Server settings as sockit serve http's (service/httpd
	// defaults), so that the comparison measures what sockit adds on top
	// of net/http. PLAIN_DEFAULTS=1 leaves IdleTimeout and MaxHeaderBytes
	// at net/http's zero values instead (no idle timer re-armed per
	// request).
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	if os.Getenv("PLAIN_DEFAULTS") == "1" {
		srv.IdleTimeout, srv.MaxHeaderBytes = 0, 0
	}
	log.Fatal(srv.Serve(ln))
}
