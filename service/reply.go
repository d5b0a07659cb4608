package service

import "maps"

// reply (alias chatbot) is seed 001's chat program: each message gets its
// answer from a table (exact match), else the default; after answering the
// close-on reply the stream connection closes. Datagram endpoints never
// close.
func newReply(cfg Config) (*Service, error) {
	r := &replier{def: DefaultReply, closeOn: DefaultCloseOn}
	if cfg.Table != nil {
		r.table = maps.Clone(cfg.Table)
	} else {
		r.table = BuiltinTable()
	}
	if cfg.Default != nil {
		r.def = *cfg.Default
	}
	if cfg.CloseOn != nil {
		r.closeOn = *cfg.CloseOn
	}
	return messageService("reply", cfg, MessageConfig{OnMessage: r.message, Text: true})
}

// BuiltinTable returns a new copy of reply's built-in table.
func BuiltinTable() map[string]string {
	return map[string]string{
		"Hello":                   "nihao",
		"How are you?":            "Fine, thank you.",
		"Did you have breakfast?": "Yes",
		"Bye":                     "Bye",
	}
}

// replier answers from a table it never modifies after New.
type replier struct {
	table   map[string]string
	def     string
	closeOn string // "": never close
}

func (r *replier) message(out, msg []byte) ([]byte, Action) {
	ans, ok := r.table[string(msg)]
	if !ok {
		ans = r.def
	}
	out = append(out, ans...)
	if r.closeOn != "" && ans == r.closeOn {
		return out, ReplyAndClose
	}
	return out, Reply
}
