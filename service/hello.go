package service

// hello is seed 000's server: it greets with "Welcome!" (one framed
// message), answers each message M with "Hello, M!" and closes on the
// message "exit". Over datagrams every M, "exit" too, gets "Hello, M!".
func newHello(cfg Config) (*Service, error) {
	return messageService("hello", cfg, MessageConfig{
		Greeting:      []byte(DefaultGreeting),
		FrameGreeting: true,
		OnMessage:     helloStream,
		OnDatagram:    helloMessage,
		Text:          true,
	})
}

func helloStream(out, msg []byte) ([]byte, Action) {
	if string(msg) == "exit" {
		return out, Hangup
	}
	return helloMessage(out, msg)
}

func helloMessage(out, msg []byte) ([]byte, Action) {
	out = append(out, "Hello, "...)
	out = append(out, msg...)
	return append(out, '!'), Reply
}
