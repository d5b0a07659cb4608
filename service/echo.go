package service

// echo is RFC 862: every message comes back unchanged, framed; a datagram
// goes back to its sender.
func newEcho(cfg Config) (*Service, error) {
	return messageService("echo", cfg, MessageConfig{OnMessage: echoMessage})
}

func echoMessage(out, msg []byte) ([]byte, Action) {
	return append(out, msg...), Reply
}
