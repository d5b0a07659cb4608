package service_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/service"
)

func TestNames(t *testing.T) {
	want := []string{"echo", "discard", "chargen", "daytime", "hello", "upper", "reply", "chat", "files"}
	if got := service.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v", got)
	}
	service.Names()[0] = "x"
	if service.Names()[0] != "echo" {
		t.Fatal("Names shares its slice")
	}
	for _, name := range append(want, "chatbot") {
		svc := mustNew(t, name, service.Config{})
		if svc.Stream == nil || svc.NewDatagram == nil && name != "files" && name != "chat" {
			t.Fatalf("%s: Stream or NewDatagram missing", name)
		}
		if name != "chatbot" && svc.Name != name {
			t.Fatalf("Name = %q, want %q", svc.Name, name)
		}
	}
}

func TestNewErrors(t *testing.T) {
	_, err := service.New("nope", service.Config{})
	if !errors.Is(err, service.ErrUnknownService) {
		t.Fatalf("unknown service: %v", err)
	}
	if got, want := err.Error(), `sockit: unknown service "nope" (services: echo, discard, chargen, daytime, hello, upper, reply, chat, files, chatbot)`; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
	for _, name := range []string{"chargen", "daytime", "hello", "upper", "reply", "chatbot"} {
		_, err := service.New(name, service.Config{Frame: frame.Spec{Kind: frame.Fixed, N: 4}})
		if !errors.Is(err, service.ErrUnsupportedFraming) {
			t.Fatalf("%s fixed:4: %v", name, err)
		}
		var fe *service.FramingError
		if !errors.As(err, &fe) || fe.Frame.N != 4 {
			t.Fatalf("%s: %v is not a *FramingError", name, err)
		}
		if got, want := err.Error(), "service "+name+" does not support framing fixed:4"; got != want {
			t.Fatalf("error %q, want %q", got, want)
		}
	}
	for _, name := range []string{"echo", "discard"} {
		mustNew(t, name, service.Config{Frame: frame.Spec{Kind: frame.Fixed, N: 4}})
		mustNew(t, name, service.Config{Frame: frame.Spec{Kind: frame.Fixed, N: 4096}, MaxFrame: 4096})
		// A fixed frame above the max frame would let a peer make the
		// server hold N bytes per connection.
		for _, cfg := range []service.Config{
			{Frame: frame.Spec{Kind: frame.Fixed, N: 4097}, MaxFrame: 4096},
			{Frame: frame.Spec{Kind: frame.Fixed, N: frame.DefaultMaxFrame + 1}},
		} {
			if _, err := service.New(name, cfg); !errors.Is(err, service.ErrFixedOverMax) {
				t.Fatalf("%s %s with max frame %d: %v, want ErrFixedOverMax", name, cfg.Frame, cfg.MaxFrame, err)
			}
		}
	}
	bad := []frame.Spec{
		{Kind: frame.Delim},
		{Kind: frame.Fixed, N: 0},
		{Kind: frame.Len, W: 3},
		{Kind: frame.Kind(42)},
	}
	for _, spec := range bad {
		_, err := service.New("echo", service.Config{Frame: spec})
		if !errors.Is(err, frame.ErrBadSpec) {
			t.Fatalf("%+v: %v", spec, err)
		}
	}
}

func TestMessageHandler(t *testing.T) {
	if _, err := service.NewMessageHandler(service.MessageConfig{}); !errors.Is(err, service.ErrNoMessageFunc) {
		t.Fatalf("no OnMessage: %v", err)
	}
	// A framed greeting that does not fit the framing is an error at once.
	_, err := service.NewMessageHandler(service.MessageConfig{
		Frame:         fLen1.spec,
		Greeting:      make([]byte, 300),
		FrameGreeting: true,
		OnMessage:     func(out, msg []byte) ([]byte, service.Action) { return out, service.NoReply },
	})
	if err == nil {
		t.Fatal("oversized framed greeting accepted")
	}
	// A counter service: per-connection state lives in the closure of the
	// factory's caller; here a shared MessageFunc numbering replies per
	// message content length.
	h, err := service.NewMessageHandler(service.MessageConfig{
		Frame: fLine.spec,
		OnMessage: func(out, msg []byte) ([]byte, service.Action) {
			switch string(msg) {
			case "quiet":
				return out, service.NoReply
			case "bye":
				return append(out, "bye"...), service.ReplyAndClose
			case "drop":
				return out, service.Hangup
			}
			return append(append(out, "got "...), msg...), service.Reply
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var f proto.Factory = h.NewProtocol
	c := openFactory(f)
	c.Data([]byte("a\nquiet\nb\nbye\nc\n"))
	wantOut(t, c, "got a\ngot b\nbye\n", "replies")
	wantClosed(t, c, true, "after bye")
	c = openFactory(f)
	c.Data([]byte("a\ndrop\nb\n"))
	wantOut(t, c, "got a\n", "replies")
	wantClosed(t, c, true, "after drop")
}
