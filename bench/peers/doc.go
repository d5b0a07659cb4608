// Package peers holds the servers and the client that sockit's benchmarks
// compare against (bench/compare.sh, docs/PERFORMANCE.md):
//
//   - stdecho: a plain stdlib echo, a goroutine per TCP connection and a
//     ReadFrom/WriteTo loop for UDP;
//   - netpollecho: the same echo on github.com/cloudwego/netpoll;
//   - floor: a minimal single-loop epoll echo on golang.org/x/sys/unix, no
//     framework and no buffer beyond one array, the floor of what user
//     space can do with epoll here;
//   - echoclient: a minimal goroutine-per-connection echo client, the
//     yardstick for sockit bench's own cost; with -depth N it keeps N in
//     flight, one write per message, or with -batch writes N at once and
//     reads the N echoes back;
//   - python/: the seeds' asyncio, selectors and socketserver echo servers.
//
// It is its own module so that the main module does not depend on netpoll.
package peers
