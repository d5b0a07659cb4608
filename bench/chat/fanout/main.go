// Command fanout measures a chat server's fan-out: N clients in one room
// (or K rooms), one sender per room, every other member a receiver. It
// reports the messages delivered per second, the delivery latency (the
// sender's write to a receiver's read, from a timestamp in the message) at
// p50/p99/p99.9/max, messages that never arrived, and, given the server's
// PIDs, its CPU time per delivered message. It speaks the line protocol of
// ncat --chat, so it runs against ncat -l --chat and sockit serve chat alike.
//
//	fanout -addr 127.0.0.1:8000 -clients 1000 -rate 200 -duration 5s -pid 1234
//
// With -rate 0 the sender runs as fast as the slowest receiver allows: at
// most -window messages ahead of it (a closed loop; an unbounded flood would
// only measure how fast a server drops or buffers). Several -addr (comma
// separated) spread the clients over them round-robin: two sockit instances
// sharing a hub, or one ncat per room with -room-per-addr.
//
// Loopback only: it refuses other addresses.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

type config struct {
	addrs       []string
	clients     int
	rooms       int
	roomPerAddr bool
	rate        float64
	window      int
	duration    time.Duration
	warmup      time.Duration
	pids        []int
	label       string
	jsonOut     bool
	payload     int
}

type result struct {
	Label        string  `json:"label"`
	Clients      int     `json:"clients"`
	Rooms        int     `json:"rooms"`
	Rate         float64 `json:"rate"`
	Sent         int64   `json:"sent"`
	Delivered    int64   `json:"delivered"`
	Missing      int64   `json:"missing"`
	Disconnected int64   `json:"disconnected"`
	PerSecond    float64 `json:"delivered_per_second"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	P999us       float64 `json:"p999_us"`
	MaxUs        float64 `json:"max_us"`
	CPUus        float64 `json:"server_cpu_us_per_delivery"`
	Seconds      float64 `json:"seconds"`
}

func main() {
	var c config
	var addrs, pids string
	flag.StringVar(&addrs, "addr", "127.0.0.1:8000", "chat server address(es), comma separated")
	flag.IntVar(&c.clients, "clients", 1000, "clients in all")
	flag.IntVar(&c.rooms, "rooms", 1, "rooms: clients i goes to room i%rooms (/join rK unless -room-per-addr)")
	flag.BoolVar(&c.roomPerAddr, "room-per-addr", false, "each address is one room (ncat has no rooms: one ncat per room)")
	flag.Float64Var(&c.rate, "rate", 0, "messages per second per room (0: as fast as the slowest receiver allows)")
	flag.IntVar(&c.window, "window", 64, "-rate 0: messages the sender may be ahead of the slowest receiver")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "measuring window")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "sending before the window, not counted")
	flag.StringVar(&pids, "pid", "", "server process id(s), comma separated, for CPU per delivery")
	flag.StringVar(&c.label, "label", "", "name of this run in the output")
	flag.BoolVar(&c.jsonOut, "json", false, "print the result as JSON")
	flag.IntVar(&c.payload, "payload", 32, "bytes of padding per message")
	flag.Parse()
	c.addrs = strings.Split(addrs, ",")
	for _, p := range strings.Split(pids, ",") {
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			fail("bad -pid %q", p)
		}
		c.pids = append(c.pids, n)
	}
	if c.clients < 2*c.rooms || c.rooms < 1 {
		fail("need at least two clients per room")
	}
	if c.roomPerAddr && len(c.addrs) != c.rooms {
		fail("-room-per-addr needs one -addr per room")
	}
	for _, a := range c.addrs {
		host, _, err := net.SplitHostPort(a)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() {
			fail("%s: fanout sends only to loopback addresses", a)
		}
	}
	res, err := run(c)
	if err != nil {
		fail("%v", err)
	}
	if c.jsonOut {
		json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	fmt.Printf("%-22s %5d clients %2d rooms  %9.0f delivered/s  p50 %8.0f µs  p99 %8.0f µs  p99.9 %8.0f µs  max %8.0f µs  missing %d  dropped %d  server %.2f µs CPU/delivery\n",
		res.Label, res.Clients, res.Rooms, res.PerSecond, res.P50us, res.P99us, res.P999us, res.MaxUs, res.Missing, res.Disconnected, res.CPUus)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fanout: "+format+"\n", args...)
	os.Exit(2)
}

// member is one client.
type member struct {
	c      net.Conn
	room   int
	sender bool
	seen   atomic.Int64 // the last sequence number received from its room's sender
	hist   *hdrhistogram.Histogram
	got    int64 // messages counted in the window
	lost   atomic.Bool
	r      *bufio.Reader
	// drainJoins reads announce lines until drain is closed and the
	// socket is quiet, then closes drained.
	drain, drained chan struct{}
}

func (m *member) drainJoins() {
	defer close(m.drained)
	defer m.c.SetReadDeadline(time.Time{})
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-m.drain:
			if m.r.Buffered() == 0 {
				return
			}
		default:
		}
		_ = m.c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := m.r.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				select {
				case <-m.drain:
					_ = m.c.SetReadDeadline(time.Time{})
					return
				default:
					continue
				}
			}
			return
		}
	}
}

var epoch = time.Now()

func run(c config) (*result, error) {
	members := make([]*member, c.clients)
	for i := range members {
		addr := c.addrs[i%len(c.addrs)]
		room := (i / len(c.addrs)) % c.rooms
		if c.roomPerAddr {
			addr, room = c.addrs[i%c.rooms], i%c.rooms
		}
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
		defer conn.Close()
		if c.rooms > 1 && !c.roomPerAddr {
			fmt.Fprintf(conn, "/join r%d\n", room)
		}
		members[i] = &member{c: conn, room: room, hist: hdrhistogram.New(1, 60_000_000, 3)}
		members[i].seen.Store(-1)
		// Read from the start: the joins' announce lines flow while the
		// others connect (ncat blocks on a member that does not read).
		members[i].r = bufio.NewReaderSize(conn, 64<<10)
		members[i].drain = make(chan struct{})
		members[i].drained = make(chan struct{})
		go members[i].drainJoins()
	}
	for _, m := range members {
		close(m.drain)
	}
	for _, m := range members {
		<-m.drained
	}
	senders := make([]*member, c.rooms)
	for _, m := range members {
		if senders[m.room] == nil {
			senders[m.room] = m
			m.sender = true
		}
	}
	// The window opens and closes on the sender's clock; receivers count
	// messages sent inside it.
	var windowStart, windowEnd atomic.Int64
	windowStart.Store(1 << 62)
	windowEnd.Store(1 << 62)
	var wg sync.WaitGroup
	var disconnected atomic.Int64
	var closing atomic.Bool
	for _, m := range members {
		if m.sender {
			// A sender reads too (the others' joins), and throws it away.
			go func() {
				buf := make([]byte, 64<<10)
				for {
					if _, err := m.c.Read(buf); err != nil {
						return
					}
				}
			}()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := m.r
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					if !errors.Is(err, bufio.ErrBufferFull) {
						if !closing.Load() {
							disconnected.Add(1) // dropped by the server
						}
						m.lost.Store(true)
						return
					}
					continue
				}
				now := int64(time.Since(epoch))
				// "<userN> T SENT SEQ PAD\n"
				// ncat prefixes the nick once per read it relays, not once
				// per line: the lines after the first of a read come bare.
				var f []string
				if i := strings.Index(string(line), "> T "); i >= 0 {
					f = strings.Fields(string(line[i+4:]))
				} else if rest, ok := strings.CutPrefix(string(line), "T "); ok {
					f = strings.Fields(rest)
				} else {
					continue // announce lines
				}
				if len(f) < 2 {
					continue
				}
				sent, _ := strconv.ParseInt(f[0], 10, 64)
				seq, _ := strconv.ParseInt(f[1], 10, 64)
				if seq == -1 { // the end
					return
				}
				m.seen.Store(seq)
				if sent >= windowStart.Load() && sent < windowEnd.Load() {
					m.got++
					m.hist.RecordValue(max((now-sent)/1000, 1))
				}
			}
		}()
	}
	// Let the joins settle: every receiver has its lines flowing once a
	// probe from each sender arrived.
	roomMembers := make([][]*member, c.rooms)
	for _, m := range members {
		if !m.sender {
			roomMembers[m.room] = append(roomMembers[m.room], m)
		}
	}
	// A room's joins may still be on their way when the sockets go quiet
	// (a server works through a join storm for a while): a probe that
	// reached only some receivers is sent again, every 500 ms.
	for k, s := range senders {
		deadline := time.Now().Add(60 * time.Second)
		for {
			fmt.Fprintf(s.c, "T %d 0 probe\n", int64(time.Since(epoch)))
			again := time.Now().Add(500 * time.Millisecond)
			waiting := 0
			for _, m := range roomMembers[k] {
				for m.seen.Load() < 0 && !m.lost.Load() && time.Now().Before(again) {
					time.Sleep(time.Millisecond)
				}
				if m.lost.Load() {
					return nil, fmt.Errorf("room %d: the server dropped a receiver before the load began", k)
				}
				if m.seen.Load() < 0 {
					waiting++
				}
			}
			if waiting == 0 {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("room %d: %d receivers did not get a probe within 60 s", k, waiting)
			}
		}
	}

	start := time.Now()
	windowStart.Store(int64(start.Add(c.warmup).Sub(epoch)))
	windowEnd.Store(int64(start.Add(c.warmup + c.duration).Sub(epoch)))
	var sentInWindow atomic.Int64
	var cpuStart, cpuEnd float64
	var swg sync.WaitGroup
	pad := strings.Repeat("x", c.payload)
	for k, s := range senders {
		swg.Add(1)
		go func() {
			defer swg.Done()
			w := bufio.NewWriterSize(s.c, 16<<10)
			interval := time.Duration(0)
			if c.rate > 0 {
				interval = time.Duration(float64(time.Second) / c.rate)
			}
			next := time.Now()
			end := start.Add(c.warmup + c.duration)
			for seq := int64(1); ; seq++ {
				now := time.Now()
				if now.After(end) {
					break
				}
				if interval > 0 {
					if d := next.Sub(now); d > 0 {
						w.Flush()
						time.Sleep(d)
					}
					next = next.Add(interval)
				} else if seq%8 == 0 || w.Buffered() == 0 {
					w.Flush()
					for slowest(roomMembers[k]) < seq-int64(c.window) {
						if time.Now().After(end) {
							break
						}
						runtime.Gosched()
					}
				}
				ts := int64(time.Since(epoch))
				if ts >= windowStart.Load() && ts < windowEnd.Load() {
					sentInWindow.Add(1)
				}
				fmt.Fprintf(w, "T %d %d %s\n", ts, seq, pad)
				if interval > 0 {
					w.Flush()
				}
			}
			w.Flush()
		}()
	}
	// CPU is sampled at the window's edges.
	time.Sleep(c.warmup)
	cpuStart = cpuOf(c.pids)
	time.Sleep(c.duration)
	cpuEnd = cpuOf(c.pids)
	swg.Wait()
	// Drain: the end marker, then wait (bounded) for every receiver.
	for _, s := range senders {
		fmt.Fprintf(s.c, "T %d -1 end\n", int64(time.Since(epoch)))
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		closing.Store(true)
		for _, m := range members {
			m.c.Close()
		}
		<-done
	}
	total := hdrhistogram.New(1, 60_000_000, 3)
	var delivered int64
	receivers := 0
	for _, m := range members {
		if m.sender {
			continue
		}
		receivers++
		total.Merge(m.hist)
		delivered += m.got
	}
	perRoom := int64(receivers / c.rooms)
	res := &result{
		Label: c.label, Clients: c.clients, Rooms: c.rooms, Rate: c.rate,
		Sent: sentInWindow.Load(), Delivered: delivered, Disconnected: disconnected.Load(),
		PerSecond: float64(delivered) / c.duration.Seconds(),
		P50us:     float64(total.ValueAtQuantile(50)), P99us: float64(total.ValueAtQuantile(99)),
		P999us: float64(total.ValueAtQuantile(99.9)), MaxUs: float64(total.Max()),
		Seconds: c.duration.Seconds(),
	}
	res.Missing = max(res.Sent*perRoom-delivered, 0)
	if len(c.pids) > 0 && delivered > 0 {
		res.CPUus = (cpuEnd - cpuStart) * 1e6 / float64(delivered)
	}
	return res, nil
}

// slowest is the lowest sequence number any receiver of a room has seen.
func slowest(ms []*member) int64 {
	low := int64(1 << 62)
	for _, m := range ms {
		if m.lost.Load() {
			continue
		}
		low = min(low, m.seen.Load())
	}
	return low
}

// cpuOf sums the user and system CPU seconds of processes.
func cpuOf(pids []int) float64 {
	var s float64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		k, _ := strconv.ParseFloat(f[12], 64)
		s += (u + k) / 100
	}
	return s
}
