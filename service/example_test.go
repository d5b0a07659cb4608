package service_test

import (
	"bytes"
	"fmt"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/service"
)

// A built-in service is configured by name; its Stream is the
// proto.Factory a server runs for each connection, and NewDatagram makes
// the protocol of a UDP or unixgram endpoint.
func ExampleNew() {
	svc, err := service.New("chatbot", service.Config{Frame: frame.Spec{Kind: frame.Line}})
	if err != nil {
		fmt.Println(err)
		return
	}
	var f proto.Factory = svc.Stream
	fmt.Println(svc.Name, f != nil, svc.NewDatagram != nil)

	_, err = service.New("hello", service.Config{Frame: frame.Spec{Kind: frame.Fixed, N: 4}})
	fmt.Println(err)
	// Output:
	// reply true true
	// service hello does not support framing fixed:4
}

// NewMessageHandler turns a function of one message into a service with
// framing, limits, the text rule and flow control: here a service that
// reverses each line and closes on "quit".
func ExampleNewMessageHandler() {
	h, err := service.NewMessageHandler(service.MessageConfig{
		Name:  "reverse",
		Frame: frame.Spec{Kind: frame.Line},
		OnMessage: func(out, msg []byte) ([]byte, service.Action) {
			if bytes.Equal(msg, []byte("quit")) {
				return out, service.Hangup
			}
			for i := len(msg) - 1; i >= 0; i-- {
				out = append(out, msg[i])
			}
			return out, service.Reply
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Serve h.NewProtocol on stream listeners and h.NewDatagram on
	// datagram endpoints.
	var f proto.Factory = h.NewProtocol
	fmt.Println(f != nil)
	// Output: true
}
