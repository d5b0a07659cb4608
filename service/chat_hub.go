package service

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/sockit/sockit/internal/ratelog"
)

// The hub: rooms across instances through NATS. Each instance publishes
// what happens in its rooms (message lines, joins, leaves, nick changes) on
// sockit.chat.ROOM (the room's name without '#') and delivers what the
// others publish to its own members of that room. One NATS connection
// publishes in the order of the room's delivery lock and one subscription
// delivers in the order received, so a sender's lines reach every
// receiver in order across instances too. /who and /rooms ask every
// instance on sockit.chatctl.who.ROOM and sockit.chatctl.rooms and gather
// the answers until every instance heard from last time answered, or
// HubTimeout. While NATS is unreachable, local delivery goes on: members
// are told once, nats.go keeps what is published in its reconnect buffer
// and delivers it on reconnect, and the subscriptions come back with it.

// Hub defaults and subjects.
const (
	DefaultHubTimeout    = 250 * time.Millisecond
	chatSubjectPrefix    = "sockit.chat."
	chatWhoSubjectPrefix = "sockit.chatctl.who."
	chatRoomsSubject     = "sockit.chatctl.rooms"
	hubDownNotice        = "hub unavailable; local room only."
	hubBackNotice        = "hub back; rooms span instances again."
)

// hubEvent is what an instance publishes on a room's subject.
type hubEvent struct {
	ID   string `json:"id"`   // the instance's unique id
	Inst string `json:"inst"` // its name (--instance)
	// Kind: "msg" (Lines: "<NICK> TEXT\n" or "* NICK TEXT\n" lines, as
	// the instance's own members got them), "connect" (with Host), "join"
	// (after /join), "leave" (Why: the text after "<NICK> "), "nick" (Old).
	Kind  string `json:"kind"`
	Nick  string `json:"nick"`
	Host  string `json:"host,omitempty"`
	Old   string `json:"old,omitempty"`
	Why   string `json:"why,omitempty"`
	Lines []byte `json:"lines,omitempty"`
}

// hubAnswer is an instance's answer to /who or /rooms.
type hubAnswer struct {
	ID      string         `json:"id"`
	Inst    string         `json:"inst"`
	Members []chatPresence `json:"members,omitempty"`
	Rooms   map[string]int `json:"rooms,omitempty"`
}

type chatHub struct {
	r       *ChatRooms
	nc      *nats.Conn
	id      string
	name    string
	timeout time.Duration
	pubWarn ratelog.Limiter
	down    atomic.Bool // members were told the hub is unavailable
	closing atomic.Bool

	mu sync.Mutex
	// holders: the instances (by id) known to hold each folded nick, from
	// their events and answers.
	holders map[string]map[string]bool
	peers   map[string]bool // the instances that answered the last gathering
}

func newChatHub(r *ChatRooms, o ChatOptions) (*chatHub, error) {
	name := o.Instance
	if name == "" {
		name, _ = os.Hostname()
	}
	h := &chatHub{
		r:       r,
		id:      nuid.Next(),
		name:    name,
		timeout: o.HubTimeout,
		holders: map[string]map[string]bool{},
		peers:   map[string]bool{},
	}
	if h.timeout <= 0 {
		h.timeout = DefaultHubTimeout
	}
	wait := o.HubReconnectWait
	if wait <= 0 {
		wait = time.Second
	}
	nc, err := nats.Connect(o.Hub,
		nats.Name("sockit chat "+name),
		nats.NoEcho(), // an instance's own events are delivered locally
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { h.lost(err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { h.back(c) }),
		nats.ConnectHandler(func(c *nats.Conn) { h.back(c) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			h.r.log.Warn("chat hub: error", "hub", o.Hub, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("chat hub %s: %w", o.Hub, err)
	}
	h.nc = nc
	subs := []struct {
		subject string
		handle  func(*nats.Msg)
	}{
		{chatSubjectPrefix + "*", h.event},
		{chatWhoSubjectPrefix + "*", h.answerWho},
		{chatRoomsSubject, h.answerRooms},
	}
	for _, s := range subs {
		if _, err := nc.Subscribe(s.subject, s.handle); err != nil {
			nc.Close()
			return nil, fmt.Errorf("chat hub %s: subscribe %s: %w", o.Hub, s.subject, err)
		}
	}
	// A round trip: the server has the subscriptions before the first
	// member joins.
	if nc.IsConnected() {
		_ = nc.FlushTimeout(2 * time.Second)
	}
	if !nc.IsConnected() {
		h.down.Store(true)
		r.log.Warn("chat hub unreachable; rooms are local until it answers", "hub", o.Hub)
	} else {
		r.log.Info("chat hub connected", "hub", nc.ConnectedUrlRedacted(), "instance", name)
	}
	return h, nil
}

func (h *chatHub) close() {
	h.closing.Store(true)
	_ = h.nc.FlushTimeout(time.Second)
	h.nc.Close()
}

// lost is NATS's disconnect: members are told once.
func (h *chatHub) lost(err error) {
	if h.closing.Load() {
		return
	}
	h.r.log.Warn("chat hub lost; rooms are local until it is back", "err", err)
	if !h.down.Swap(true) {
		h.r.tellEveryone(hubDownNotice)
	}
}

// back is NATS's (re)connect.
func (h *chatHub) back(c *nats.Conn) {
	h.r.log.Info("chat hub connected", "hub", c.ConnectedUrlRedacted(), "instance", h.name)
	if h.down.Swap(false) {
		h.r.tellEveryone(hubBackNotice)
	}
}

// tellEveryone sends a notice to every member here.
func (r *ChatRooms) tellEveryone(text string) {
	line := announce(text)
	for _, m := range r.everyone() {
		m.send(line)
	}
}

func roomSubject(prefix, room string) string { return prefix + strings.TrimPrefix(room, "#") }

// publish sends ev on its room's subject. It is called with the room's
// delivery lock held, which orders the room's events.
func (h *chatHub) publish(room *chatRoom, ev hubEvent) {
	ev.ID, ev.Inst = h.id, h.name
	data, err := json.Marshal(ev)
	if err == nil {
		err = h.nc.Publish(roomSubject(chatSubjectPrefix, room.name), data)
	}
	if err != nil && !h.closing.Load() {
		h.pubWarn.Warn(h.r.log, "chat hub: publish failed; other instances miss it", "room", room.name, "err", err)
	}
}

func (h *chatHub) publishLines(room *chatRoom, m *chatMember, lines []byte) {
	h.publish(room, hubEvent{Kind: "msg", Nick: m.nick, Lines: lines})
}

func (h *chatHub) publishJoin(room *chatRoom, m *chatMember, first bool) {
	kind := "join"
	if first {
		kind = "connect"
	}
	h.publish(room, hubEvent{Kind: kind, Nick: m.nick, Host: m.host})
}

func (h *chatHub) publishLeave(room *chatRoom, m *chatMember, why string) {
	h.publish(room, hubEvent{Kind: "leave", Nick: m.nick, Why: why})
}

func (h *chatHub) publishNick(room *chatRoom, m *chatMember, old string) {
	h.publish(room, hubEvent{Kind: "nick", Nick: m.nick, Old: old})
}

// event delivers another instance's event to the members of its room here.
func (h *chatHub) event(msg *nats.Msg) {
	var ev hubEvent
	if err := json.Unmarshal(msg.Data, &ev); err != nil || ev.ID == "" || ev.ID == h.id {
		return
	}
	room := "#" + strings.TrimPrefix(msg.Subject, chatSubjectPrefix)
	switch ev.Kind {
	case "connect", "join", "msg":
		h.hold(ev.Nick, ev.ID, true)
	case "nick":
		h.hold(ev.Old, ev.ID, false)
		h.hold(ev.Nick, ev.ID, true)
	}
	nick := h.display(ev.Nick, ev.ID, ev.Inst)
	var lines []byte
	switch ev.Kind {
	case "msg":
		lines = requalify(ev.Lines, ev.Nick, nick)
	case "connect":
		lines = announce(ev.Host + " is connected as <" + nick + ">.")
	case "join":
		lines = announce("<" + nick + "> joined " + room + ".")
	case "leave":
		lines = announce("<" + nick + "> " + ev.Why)
	case "nick":
		lines = announce("<" + h.display(ev.Old, ev.ID, ev.Inst) + "> is now known as <" + nick + ">.")
	default:
		return
	}
	if ev.Kind == "leave" && strings.HasPrefix(ev.Why, "is disconnected") {
		h.hold(ev.Nick, ev.ID, false)
	}
	h.r.deliverRemote(room, lines)
}

// requalify rewrites the nick of each "<NICK> " or "* NICK " line.
func requalify(lines []byte, nick, shown string) []byte {
	if nick == shown {
		return lines
	}
	var out []byte
	for len(lines) > 0 {
		i := indexNewline(lines)
		line := lines[:i]
		lines = lines[i:]
		switch {
		case len(line) > len(nick)+2 && line[0] == '<' && string(line[1:1+len(nick)]) == nick && line[1+len(nick)] == '>':
			out = append(out, '<')
			out = append(out, shown...)
			out = append(out, line[1+len(nick):]...)
		case len(line) > len(nick)+2 && line[0] == '*' && line[1] == ' ' && string(line[2:2+len(nick)]) == nick:
			out = append(out, "* "...)
			out = append(out, shown...)
			out = append(out, line[2+len(nick):]...)
		default:
			out = append(out, line...)
		}
	}
	return out
}

// indexNewline is the length of b's first line, its newline included.
func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i + 1
		}
	}
	return len(b)
}

// deliverRemote writes lines from another instance to the members of room
// here.
func (r *ChatRooms) deliverRemote(name string, lines []byte) {
	r.mu.Lock()
	room := r.rooms[name]
	r.mu.Unlock()
	if room == nil {
		return
	}
	room.deliver.Lock()
	for _, m := range room.members {
		m.send(lines)
	}
	r.echoLines(room, lines)
	room.deliver.Unlock()
}

// hold records that instance id holds (or no longer holds) nick.
func (h *chatHub) hold(nick, id string, holds bool) {
	key := foldNick(nick)
	h.mu.Lock()
	defer h.mu.Unlock()
	if holds {
		if h.holders[key] == nil {
			h.holders[key] = map[string]bool{}
		}
		h.holders[key][id] = true
		return
	}
	delete(h.holders[key], id)
	if len(h.holders[key]) == 0 {
		delete(h.holders, key)
	}
}

// display is how a nick of instance id is shown here: NICK@INSTANCE when
// another instance, or this one, holds the same nick.
func (h *chatHub) display(nick, id, inst string) string {
	key := foldNick(nick)
	h.r.mu.Lock()
	local := h.r.nicks[key] != nil
	h.r.mu.Unlock()
	h.mu.Lock()
	others := 0
	for holder := range h.holders[key] {
		if holder != id {
			others++
		}
	}
	h.mu.Unlock()
	if local || others > 0 {
		return nick + "@" + inst
	}
	return nick
}

// gather asks every instance on subject and collects the answers until
// every instance that answered last time did again, or the timeout.
func (h *chatHub) gather(subject string) []hubAnswer {
	if !h.nc.IsConnected() {
		return nil
	}
	inbox := nats.NewInbox()
	sub, err := h.nc.SubscribeSync(inbox)
	if err != nil {
		return nil
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(hubAnswer{ID: h.id, Inst: h.name})
	if err := h.nc.PublishRequest(subject, inbox, req); err != nil {
		return nil
	}
	h.mu.Lock()
	want := len(h.peers)
	known := make(map[string]bool, want)
	for id := range h.peers {
		known[id] = true
	}
	h.mu.Unlock()
	deadline := time.Now().Add(h.timeout)
	var out []hubAnswer
	got := map[string]bool{}
	for left := time.Until(deadline); left > 0; left = time.Until(deadline) {
		msg, err := sub.NextMsg(left)
		if err != nil {
			break
		}
		var a hubAnswer
		if json.Unmarshal(msg.Data, &a) != nil || a.ID == "" || got[a.ID] {
			continue
		}
		got[a.ID] = true
		out = append(out, a)
		if want > 0 && len(got) >= want && allIn(known, got) {
			break
		}
	}
	h.mu.Lock()
	h.peers = got
	h.mu.Unlock()
	for _, a := range out {
		for _, p := range a.Members {
			h.hold(p.Nick, a.ID, true)
		}
	}
	return out
}

func allIn(want, got map[string]bool) bool {
	for id := range want {
		if !got[id] {
			return false
		}
	}
	return true
}

// who lists room's members on the other instances.
func (h *chatHub) who(room string) []chatPresence {
	var out []chatPresence
	answers := h.gather(roomSubject(chatWhoSubjectPrefix, room))
	slices.SortFunc(answers, func(a, b hubAnswer) int { return strings.Compare(a.Inst, b.Inst) })
	for _, a := range answers {
		for _, p := range a.Members {
			out = append(out, chatPresence{Nick: h.display(p.Nick, a.ID, a.Inst), Host: p.Host})
		}
	}
	return out
}

// rooms counts the members of every room on the other instances.
func (h *chatHub) rooms() map[string]int {
	out := map[string]int{}
	for _, a := range h.gather(chatRoomsSubject) {
		for name, n := range a.Rooms {
			out[name] += n
		}
	}
	return out
}

func (h *chatHub) answerWho(msg *nats.Msg) {
	if h.fromSelf(msg) {
		return
	}
	room := "#" + strings.TrimPrefix(msg.Subject, chatWhoSubjectPrefix)
	h.respond(msg, hubAnswer{Members: h.r.localWho(room)})
}

func (h *chatHub) answerRooms(msg *nats.Msg) {
	if h.fromSelf(msg) {
		return
	}
	h.respond(msg, hubAnswer{Rooms: h.r.localRooms()})
}

func (h *chatHub) fromSelf(msg *nats.Msg) bool {
	var req hubAnswer
	return json.Unmarshal(msg.Data, &req) != nil || req.ID == h.id || msg.Reply == ""
}

func (h *chatHub) respond(msg *nats.Msg, a hubAnswer) {
	a.ID, a.Inst = h.id, h.name
	data, _ := json.Marshal(a)
	_ = msg.Respond(data)
}
