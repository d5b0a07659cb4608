package service

// discard is RFC 863: messages are read and dropped. Framing still applies,
// so a message over the max frame is refused as everywhere else.
func newDiscard(cfg Config) (*Service, error) {
	return messageService("discard", cfg, MessageConfig{OnMessage: discardMessage})
}

func discardMessage(out, _ []byte) ([]byte, Action) { return out, NoReply }
