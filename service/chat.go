package service

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/proto"
)

// chat is multi-user rooms in the shape of ncat --chat (SPEC §4): nicks
// user1, user2, …, everyone in #lobby, a line goes to every other member
// as "<NICK> TEXT\n", server notices are "<announce> …" lines, control
// bytes are escaped as \ooo. Unlike ncat, lines are framed (a partial line
// waits for its newline), valid UTF-8 passes unescaped, a slow reader is
// dropped instead of stalling the room, and rooms can span instances
// through NATS (chat_hub.go).
//
// Concurrency: ChatRooms.mu guards membership (rooms, nicks, a member's
// room and nick). Each room has a delivery lock, held while a message or a
// notice is written to its members, so every receiver sees the room's
// lines in one order (a newcomer's own lines first). Lock order: a room's
// delivery lock, then mu; mu is never held while writing. A write never
// blocks (the transport queues it) and never re-enters chat code under a
// lock: a full queue drops its member by aborting the connection, and the
// leave notice follows from that member's own OnClose.

// Chat defaults.
const (
	// DefaultChatMaxQueue bounds what a member's connection may have
	// queued and not yet sent; a member over it is dropped as too slow.
	DefaultChatMaxQueue = 1 << 20
	// DefaultChatMaxLine bounds a chat line when Config.MaxFrame is not
	// given: a chat line is for people.
	DefaultChatMaxLine = 64 << 10
	// DefaultChatRoom is the room every member joins first.
	DefaultChatRoom = "#lobby"
	// maxChatName bounds a nick and a room name (the '#' not counted).
	maxChatName = 32
	// maxListedToOthers bounds the "already connected" list the other
	// members get on a join.
	maxListedToOthers = 16
	// chatEchoQueue is how many lines --echo-stdout holds for a slow
	// stdout before it drops them.
	chatEchoQueue = 4096
)

// ErrChatClosed is returned by a ChatRooms' methods after Close.
var ErrChatClosed = errors.New("sockit: chat rooms closed")

// ChatOptions configures a ChatRooms. The zero value gives the defaults.
type ChatOptions struct {
	// MaxQueue bounds each member's outbound queue in bytes; <= 0 means
	// DefaultChatMaxQueue. A member whose queue is over it when the next
	// line arrives is dropped with "<announce> NICK is disconnected (too
	// slow)." to its room; the queue never holds more than MaxQueue plus
	// one line.
	MaxQueue int
	// MaxLine bounds a line, its newline not counted; <= 0 means
	// DefaultChatMaxLine. A longer line gets "<announce> line too long."
	// and is dropped; the member stays.
	MaxLine int
	// RateLimit is the messages per second a member may send (a burst of
	// as many); the excess is dropped with one notice per second. <= 0
	// means no limit. Commands are not counted.
	RateLimit float64
	// Echo, if not nil, receives every room's traffic as "#ROOM LINE"
	// (--echo-stdout). A writer that falls behind loses lines, never
	// delays a room.
	Echo io.Writer
	// Logger receives joins, leaves, nick changes and drops (Info) and the
	// hub's state (Warn); nil means slog.Default().
	Logger *slog.Logger
	// Hub, if not "", is a NATS URL (nats://HOST:PORT, several separated
	// by commas) through which rooms span every instance connected to it.
	Hub string
	// Instance names this instance on the hub; "" means the host name.
	// Other instances show a nick that two instances hold as NICK@INSTANCE.
	Instance string
	// HubTimeout bounds how long /who and /rooms wait for the other
	// instances' answers; <= 0 means DefaultHubTimeout.
	HubTimeout time.Duration
	// HubReconnectWait is the pause between attempts to reach the hub
	// again; <= 0 means one second.
	HubReconnectWait time.Duration
}

// ChatRooms holds the rooms of the chat service: every connection made
// with its Factory, on every endpoint, shares them. It is safe for
// concurrent use.
type ChatRooms struct {
	maxQueue  int
	maxLine   int
	rateLimit float64
	log       *slog.Logger
	echo      *chatEcho
	hub       *chatHub

	mu     sync.Mutex
	rooms  map[string]*chatRoom   // by name, "#lobby"
	nicks  map[string]*chatMember // by folded nick
	seq    int                    // the last userN given
	closed bool
}

// chatRoom is one room. members is replaced, never modified in place, and
// only with both deliver and ChatRooms.mu held: a delivery (holding
// deliver) reads it without mu, anyone else under mu; a slice read may be
// used after the lock is released.
type chatRoom struct {
	name    string
	deliver sync.Mutex
	members []*chatMember // in join order
}

// NewChatRooms makes the rooms of a chat service. With o.Hub it connects to
// NATS; an unreachable hub is not an error: the rooms work locally, the
// hub is retried in the background and the state is logged.
func NewChatRooms(o ChatOptions) (*ChatRooms, error) {
	r := &ChatRooms{
		maxQueue:  cmp.Or(max(o.MaxQueue, 0), DefaultChatMaxQueue),
		maxLine:   cmp.Or(max(o.MaxLine, 0), DefaultChatMaxLine),
		rateLimit: max(o.RateLimit, 0),
		log:       logger(o.Logger),
		rooms:     map[string]*chatRoom{},
		nicks:     map[string]*chatMember{},
	}
	if o.Echo != nil {
		r.echo = newChatEcho(o.Echo, r.log)
	}
	if o.Hub != "" {
		h, err := newChatHub(r, o)
		if err != nil {
			r.echo.close()
			return nil, err
		}
		r.hub = h
	}
	return r, nil
}

// Close disconnects from the hub and stops the echo. Connections still
// open keep their local rooms.
func (r *ChatRooms) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	if r.hub != nil {
		r.hub.close()
	}
	r.echo.close()
	return nil
}

// Factory makes the protocol of each chat connection; meter (nil: none)
// counts the lines it receives and the deliveries they make.
func (r *ChatRooms) Factory(meter *metrics.Meter) proto.Factory {
	return func(info proto.ConnInfo) proto.Protocol {
		m := &chatMember{r: r, host: chatHost(info.RemoteAddr)}
		if meter != nil {
			m.meter = meter.Shard()
		}
		return m
	}
}

// chatHost is the peer's address as the announce lines show it: its IP, as
// ncat does; "local" for a Unix socket's unnamed peer.
func chatHost(a net.Addr) string {
	if a == nil {
		return "local"
	}
	s := a.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	if s == "" || s == "@" {
		return "local"
	}
	return s
}

func newChat(cfg Config) (*Service, error) {
	if cfg.Greeting != nil {
		return nil, errors.New("chat has no greeting: its first lines are the announce lines")
	}
	rooms, own := cfg.Rooms, false
	if rooms == nil {
		var err error
		if rooms, err = NewChatRooms(ChatOptions{MaxLine: cfg.MaxFrame, Logger: cfg.Logger}); err != nil {
			return nil, err
		}
		own = true
	}
	s := &Service{Stream: rooms.Factory(cfg.Meter)}
	if own {
		s.Close = rooms.Close
	}
	return s, nil
}

// ---- one member -------------------------------------------------------------

type chatMember struct {
	r     *ChatRooms
	t     proto.Transport
	host  string
	meter *metrics.Shard

	// nick and room change only in this member's callbacks, under r.mu:
	// its callbacks read them without the lock.
	nick string
	room *chatRoom

	// gone: the member left its room (OnClose or /quit); slow: it was
	// dropped for a full queue.
	gone atomic.Bool
	slow atomic.Bool
	// asking: a /who or /rooms waits for the hub's answers.
	asking atomic.Bool

	// Callback state.
	buf      []byte // a partial line
	skipping bool   // dropping the rest of a line that was too long
	batch    []byte // message lines of this OnData, escaped, not yet delivered
	outMsgs  int    // deliveries made in this OnData, for the meter
	outBytes int
	quit     bool
	tokens   float64 // rate limit
	refilled time.Time
	noticed  time.Time // the last rate-limit notice
}

func (m *chatMember) OnOpen(t proto.Transport) {
	m.t = t
	// The queue is bounded by the hard limit: a Write is accepted while
	// the queue is at or below MaxQueue, whatever the line's size, and
	// refused (ErrBufferFull) once it is over: the member is dropped then.
	_ = t.SetWriteBufferLimits(m.r.maxQueue, m.r.maxQueue/4)
	t.SetWriteBufferHardLimit(m.r.maxQueue)
	m.tokens = m.r.rateLimit
	m.refilled = time.Now()
	if !m.r.join(m, DefaultChatRoom, true) {
		m.gone.Store(true)
		t.Abort()
	}
}

func (m *chatMember) OnData(data []byte) {
	start := metrics.Clock()
	in, lines := len(data), 0
	for len(data) > 0 && !m.quit {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if !m.skipping {
				if len(m.buf)+len(data) > m.r.maxLine+1 { // +1: a \r before the newline
					m.tooLong()
				} else {
					m.buf = append(m.buf, data...)
				}
			}
			break
		}
		chunk := data[:i]
		data = data[i+1:]
		if m.skipping {
			m.skipping = false
			continue
		}
		line := chunk
		if len(m.buf) > 0 {
			m.buf = append(m.buf, chunk...)
			line = m.buf
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > m.r.maxLine {
			m.tooLong()
			m.skipping = false // its newline came
			continue
		}
		lines++
		m.line(line)
		m.buf = m.buf[:0]
	}
	m.flush()
	if cap(m.buf) > 64<<10 && len(m.buf) == 0 {
		m.buf = nil
	}
	if m.meter != nil {
		m.meter.Batch(lines, in, m.outMsgs, m.outBytes, metrics.Clock()-start)
	}
	m.outMsgs, m.outBytes = 0, 0
	if m.quit {
		m.leave()
		m.t.Close()
	}
}

// tooLong drops the line being received: the rest of it, up to its
// newline, is skipped.
func (m *chatMember) tooLong() {
	m.flush()
	m.buf = m.buf[:0]
	m.skipping = true
	m.notice("line too long.")
}

// Idle: between lines. A partial line pending longer than the server's
// read timeout closes the connection (a slowloris writer); a shutdown
// closes an idle member at once.
func (m *chatMember) Idle() bool { return len(m.buf) == 0 && !m.skipping }

func (m *chatMember) OnEOF() bool { return false }

func (m *chatMember) OnClose(error) { m.leave() }

func (m *chatMember) OnPauseWriting()  {}
func (m *chatMember) OnResumeWriting() {}

// send writes a line to the member; a full queue drops it.
func (m *chatMember) send(b []byte) {
	if m.gone.Load() || m.slow.Load() {
		return
	}
	if err := m.t.Write(b); errors.Is(err, proto.ErrBufferFull) && m.slow.CompareAndSwap(false, true) {
		// Its OnClose announces the drop. The abort runs on a goroutine
		// of its own: send is called with a room's delivery lock held,
		// and no transport may call back into chat code under it.
		go m.t.Abort()
	}
}

// notice writes "<announce> TEXT\n" to the member alone.
func (m *chatMember) notice(text string) {
	m.send(announce(text))
}

func announce(text string) []byte { return []byte("<announce> " + text + "\n") }

// line handles one line: a command or a message.
func (m *chatMember) line(line []byte) {
	if len(line) > 0 && line[0] == '/' {
		if len(line) > 1 && line[1] == '/' {
			line = line[1:] // "//text" says "/text"
		} else {
			m.flush()
			m.command(string(line))
			return
		}
	}
	if !m.allow() {
		return
	}
	m.batch = append(m.batch, '<')
	m.batch = append(m.batch, m.nick...)
	m.batch = append(m.batch, "> "...)
	m.batch = appendEscaped(m.batch, line)
	m.batch = append(m.batch, '\n')
	if len(m.batch) >= 64<<10 {
		m.flush()
	}
}

// flush delivers the message lines gathered so far to the room's other
// members (one write each) and to the hub. It returns the deliveries made
// and their bytes, and adds them to the connection's counts.
func (m *chatMember) flush() (int, int) {
	if len(m.batch) == 0 {
		return 0, 0
	}
	room := m.room
	room.deliver.Lock()
	members := room.members // deliver held
	n := 0
	for _, o := range members {
		if o != m {
			o.send(m.batch)
			n++
		}
	}
	m.r.echoLines(room, m.batch)
	if m.r.hub != nil {
		m.r.hub.publishLines(room, m, m.batch)
	}
	room.deliver.Unlock()
	size := n * len(m.batch)
	m.batch = m.batch[:0]
	if cap(m.batch) > 256<<10 {
		m.batch = nil
	}
	m.outMsgs += n
	m.outBytes += size
	return n, size
}

// allow applies the rate limit to one message.
func (m *chatMember) allow() bool {
	rate := m.r.rateLimit
	if rate <= 0 {
		return true
	}
	now := time.Now()
	m.tokens = min(rate, m.tokens+now.Sub(m.refilled).Seconds()*rate)
	m.refilled = now
	if m.tokens >= 1 {
		m.tokens--
		return true
	}
	if now.Sub(m.noticed) >= time.Second {
		m.noticed = now
		m.flush()
		m.notice("rate limit of " + strconv.FormatFloat(rate, 'g', -1, 64) + " messages per second: message dropped.")
	}
	return false
}

// command runs one "/NAME ARGS" line.
func (m *chatMember) command(line string) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/nick":
		m.r.rename(m, arg)
	case "/join":
		room, ok := chatRoomName(arg)
		if !ok {
			m.notice("bad room name: use # and 1 to 32 letters, digits, _ or -.")
			return
		}
		if room == m.room.name {
			m.notice("you are already in " + room + ".")
			return
		}
		m.r.leaveRoom(m, "left "+m.room.name+".")
		m.r.join(m, room, false)
	case "/who":
		m.r.who(m)
	case "/rooms":
		m.r.listRooms(m)
	case "/me":
		if !m.allow() {
			return
		}
		line := append([]byte("* "+m.nick+" "), appendEscaped(nil, []byte(arg))...)
		m.batch = append(line, '\n')
		m.flush()
	case "/quit":
		m.quit = true
	case "/help":
		m.notice("commands: /nick NAME, /join ROOM, /who, /rooms, /me TEXT, /quit, /help; //TEXT says /TEXT.")
	default:
		m.notice("unknown command " + strconv.Quote(string(appendEscaped(nil, []byte(name)))) + "; /help lists the commands.")
	}
}

// leave takes the member out of its room once, with the notice to the
// others: "is disconnected." or "(too slow)".
func (m *chatMember) leave() {
	if m.gone.Swap(true) {
		return
	}
	m.batch = m.batch[:0]
	why := "is disconnected."
	reason := "closed"
	if m.slow.Load() {
		why, reason = "is disconnected (too slow).", "too slow"
	}
	m.r.leaveRoom(m, why)
	m.r.mu.Lock()
	if m.r.nicks[foldNick(m.nick)] == m {
		delete(m.r.nicks, foldNick(m.nick))
	}
	m.r.mu.Unlock()
	m.r.log.Info("chat leave", "nick", m.nick, "peer", m.host, "reason", reason)
}

// ---- rooms --------------------------------------------------------------------

// join puts m into the room called name, with the notices: on connecting
// (first) ncat's two lines to everyone in the room, the newcomer included;
// after /join, "<NICK> joined ROOM." to everyone and the list of the others
// to m. It reports false after Close.
func (r *ChatRooms) join(m *chatMember, name string, first bool) bool {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return false
		}
		room := r.rooms[name]
		if room == nil {
			room = &chatRoom{name: name}
			r.rooms[name] = room
		}
		r.mu.Unlock()

		room.deliver.Lock()
		r.mu.Lock()
		if r.rooms[name] != room { // emptied and removed meanwhile
			r.mu.Unlock()
			room.deliver.Unlock()
			continue
		}
		if first {
			m.nick = r.nextNickLocked()
			r.nicks[foldNick(m.nick)] = m
		}
		others := room.members
		room.members = append(slices.Clip(others), m)
		m.room = room
		r.mu.Unlock()

		var list []string
		for _, o := range others {
			list = append(list, o.host+" as <"+o.nick+">")
		}
		var lines, toOthers []byte
		if first {
			lines = announce(m.host + " is connected as <" + m.nick + ">.")
			toOthers = slices.Clip(lines)
			if len(list) > maxListedToOthers {
				// ncat sends the whole list to everyone on every join:
				// O(n²) bytes a join, O(n³) for a room filling up. The
				// others get its head; the newcomer gets it whole.
				head := append(slices.Clip(list[:maxListedToOthers]), "and "+strconv.Itoa(len(list)-maxListedToOthers)+" more")
				toOthers = append(toOthers, announce("already connected: "+strings.Join(head, ", ")+".")...)
			}
			lines = append(lines, announce("already connected: "+joinOrNobody(list)+".")...)
			if len(list) <= maxListedToOthers {
				toOthers = lines
			}
		} else {
			lines = announce("<" + m.nick + "> joined " + name + ".")
			toOthers = slices.Clip(lines)
		}
		for _, o := range others {
			o.send(toOthers)
		}
		if !first {
			lines = append(lines, announce("already in "+name+": "+joinOrNobody(list)+".")...)
		}
		if first && r.hub != nil && r.hub.down.Load() {
			lines = append(lines, announce(hubDownNotice)...)
		}
		m.send(lines)
		r.echoLines(room, lines)
		if r.hub != nil {
			r.hub.publishJoin(room, m, first)
		}
		room.deliver.Unlock()
		r.log.Info("chat join", "nick", m.nick, "peer", m.host, "room", name)
		return true
	}
}

func joinOrNobody(list []string) string {
	if len(list) == 0 {
		return "nobody"
	}
	return strings.Join(list, ", ")
}

// nextNickLocked is the next free userN.
func (r *ChatRooms) nextNickLocked() string {
	for {
		r.seq++
		nick := "user" + strconv.Itoa(r.seq)
		if r.nicks[foldNick(nick)] == nil {
			return nick
		}
	}
}

// leaveRoom takes m out of its room and tells the others "<NICK> WHY".
func (r *ChatRooms) leaveRoom(m *chatMember, why string) {
	room := m.room
	if room == nil {
		return
	}
	room.deliver.Lock()
	r.mu.Lock()
	i := slices.Index(room.members, m)
	if i >= 0 {
		room.members = slices.Delete(slices.Clone(room.members), i, i+1)
	}
	if len(room.members) == 0 && r.rooms[room.name] == room {
		delete(r.rooms, room.name)
	}
	others := room.members
	r.mu.Unlock()
	if i >= 0 {
		line := announce("<" + m.nick + "> " + why)
		for _, o := range others {
			o.send(line)
		}
		r.echoLines(room, line)
		if r.hub != nil {
			r.hub.publishLeave(room, m, why)
		}
	}
	room.deliver.Unlock()
}

// rename is /nick NAME.
func (r *ChatRooms) rename(m *chatMember, nick string) {
	if !validChatName(nick) {
		m.notice("bad nick: use 1 to 32 letters, digits, _ or -.")
		return
	}
	room := m.room
	room.deliver.Lock()
	defer room.deliver.Unlock()
	r.mu.Lock()
	old := m.nick
	if holder := r.nicks[foldNick(nick)]; holder != nil && holder != m {
		r.mu.Unlock()
		m.notice("nick <" + nick + "> is taken.")
		return
	}
	delete(r.nicks, foldNick(old))
	r.nicks[foldNick(nick)] = m
	m.nick = nick
	members := room.members
	r.mu.Unlock()
	line := announce("<" + old + "> is now known as <" + nick + ">.")
	for _, o := range members {
		o.send(line)
	}
	r.echoLines(room, line)
	if r.hub != nil {
		r.hub.publishNick(room, m, old)
	}
	r.log.Info("chat nick", "old", old, "nick", nick, "peer", m.host)
}

// chatPresence is one member as /who lists it.
type chatPresence struct {
	Nick string `json:"nick"`
	Host string `json:"host"`
}

// localWho lists the room's members here.
func (r *ChatRooms) localWho(name string) []chatPresence {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []chatPresence
	if room := r.rooms[name]; room != nil {
		for _, o := range room.members {
			out = append(out, chatPresence{Nick: o.nick, Host: o.host})
		}
	}
	return out
}

// localRooms counts the members of each room here.
func (r *ChatRooms) localRooms() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.rooms))
	for name, room := range r.rooms {
		out[name] = len(room.members)
	}
	return out
}

// who is /who: the members of m's room, here and (with a hub) on the other
// instances. Asking the hub waits, so it runs off the connection's
// callback.
func (r *ChatRooms) who(m *chatMember) {
	name := m.room.name
	answer := func(list []string) {
		m.notice("in " + name + ": " + joinOrNobody(list) + ".")
	}
	var list []string
	for _, p := range r.localWho(name) {
		list = append(list, p.Host+" as <"+p.Nick+">")
	}
	if r.hub == nil {
		answer(list)
		return
	}
	r.askHub(m, func() {
		for _, p := range r.hub.who(name) {
			list = append(list, p.Host+" as <"+p.Nick+">")
		}
		answer(list)
	})
}

// askHub runs a /who or /rooms that waits for the hub off the member's
// callback, one at a time per member: a client flooding /who would
// otherwise start a goroutine and a hub request per line.
func (r *ChatRooms) askHub(m *chatMember, ask func()) {
	if !m.asking.CompareAndSwap(false, true) {
		m.notice("one /who or /rooms at a time: wait for its answer.")
		return
	}
	go func() {
		defer m.asking.Store(false)
		ask()
	}()
}

// listRooms is /rooms: every room and its member count.
func (r *ChatRooms) listRooms(m *chatMember) {
	answer := func(counts map[string]int) {
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(counts)) {
			parts = append(parts, fmt.Sprintf("%s (%d)", name, counts[name]))
		}
		m.notice("rooms: " + joinOrNobody(parts) + ".")
	}
	counts := r.localRooms()
	if r.hub == nil {
		answer(counts)
		return
	}
	r.askHub(m, func() {
		for name, n := range r.hub.rooms() {
			counts[name] += n
		}
		answer(counts)
	})
}

// everyone is a snapshot of every member here, for notices to all.
func (r *ChatRooms) everyone() []*chatMember {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*chatMember
	for _, room := range r.rooms {
		out = append(out, room.members...)
	}
	return out
}

func (r *ChatRooms) echoLines(room *chatRoom, lines []byte) {
	if r.echo != nil {
		r.echo.lines(room.name, lines)
	}
}

// ---- names and escaping -------------------------------------------------------

// validChatName: 1 to 32 letters, digits, _ or -.
func validChatName(s string) bool {
	if len(s) == 0 || len(s) > maxChatName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// chatRoomName is the canonical "#name" of a /join argument ("go" or "#go").
func chatRoomName(arg string) (string, bool) {
	name := strings.TrimPrefix(arg, "#")
	if !validChatName(name) {
		return "", false
	}
	return "#" + name, true
}

// foldNick is a nick's key: nicks are unique regardless of case.
func foldNick(s string) string { return strings.ToLower(s) }

// appendEscaped appends line with every control byte but tab escaped as
// \ooo, as ncat --chat does: C0 controls, DEL and, in valid UTF-8, the C1
// controls U+0080–U+009F (both of their bytes). Other valid UTF-8 passes
// unescaped (ncat escapes every byte over 0x7e); bytes that are not valid
// UTF-8 pass as they are.
func appendEscaped(dst, line []byte) []byte {
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == '\t' || c >= 0x20 && c < 0x7f:
			dst = append(dst, c)
			i++
		case c < 0x20 || c == 0x7f:
			dst = appendOctal(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(line[i:])
			if r >= 0x80 && r <= 0x9f {
				for _, b := range line[i : i+n] {
					dst = appendOctal(dst, b)
				}
			} else {
				dst = append(dst, line[i:i+n]...)
			}
			i += n
		}
	}
	return dst
}

func appendOctal(dst []byte, c byte) []byte {
	return append(dst, '\\', '0'+c>>6, '0'+c>>3&7, '0'+c&7)
}

// ---- echo ----------------------------------------------------------------------

// chatEcho writes the rooms' traffic to a writer from a goroutine of its
// own, through a bounded queue: a stdout nobody reads loses lines, it
// never stalls a room.
type chatEcho struct {
	w       io.Writer
	log     *slog.Logger
	ch      chan []byte
	done    chan struct{}
	dropped atomic.Int64

	mu     sync.RWMutex
	closed bool
}

func newChatEcho(w io.Writer, log *slog.Logger) *chatEcho {
	e := &chatEcho{w: w, log: log, ch: make(chan []byte, chatEchoQueue), done: make(chan struct{})}
	go e.run()
	return e
}

func (e *chatEcho) run() {
	defer close(e.done)
	for b := range e.ch {
		if _, err := e.w.Write(b); err != nil {
			e.log.Warn("chat echo: write failed; echo stopped", "err", err)
			for range e.ch {
			}
			return
		}
	}
}

// lines queues one or more lines of room, each as "ROOM LINE".
func (e *chatEcho) lines(room string, lines []byte) {
	var b []byte
	for len(lines) > 0 {
		line, rest, _ := bytes.Cut(lines, []byte{'\n'})
		b = append(b, room...)
		b = append(b, ' ')
		b = append(b, line...)
		b = append(b, '\n')
		lines = rest
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return
	}
	select {
	case e.ch <- b:
	default:
		if e.dropped.Add(1) == 1 {
			e.log.Warn("chat echo: the output is not keeping up; lines are dropped")
		}
	}
}

func (e *chatEcho) close() {
	if e == nil {
		return
	}
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.ch)
	}
	e.mu.Unlock()
	<-e.done
}
