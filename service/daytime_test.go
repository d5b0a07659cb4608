package service_test

import (
	"testing"
	"time"

	"github.com/sockit/sockit/service"
)

func TestDaytimeStream(t *testing.T) {
	now := time.Date(2018, 3, 16, 8, 28, 25, 999, time.Local)
	clock := func() time.Time { return now }
	const ts = "2018-03-16 08:28:25"
	cases := []struct {
		fr   framing
		want string
	}{
		{fRaw, ts + "\r\n"},
		{fLine, ts + "\n"},
		{fComma, ts + ","},
		{fCRLF, ts + "\r\n"},
		{fLen1, "\x13" + ts},
		{fLen2, "\x00\x13" + ts},
		{fLen4, "\x00\x00\x00\x13" + ts},
		{fLen8, "\x00\x00\x00\x00\x00\x00\x00\x13" + ts},
		{fClose, ts},
	}
	for _, tc := range cases {
		t.Run(tc.fr.name, func(t *testing.T) {
			c := open(mustNew(t, "daytime", service.Config{Frame: tc.fr.spec, Now: clock}), "tcp")
			wantOut(t, c, tc.want, "time")
			wantClosed(t, c, true, "after the time")
		})
	}
	t.Run("format", func(t *testing.T) {
		c := open(mustNew(t, "daytime", service.Config{Now: clock, TimeFormat: time.RFC3339}), "tcp")
		wantOut(t, c, now.Format(time.RFC3339)+"\r\n", "time")
	})
	t.Run("greeting", func(t *testing.T) {
		c := open(mustNew(t, "daytime", service.Config{Frame: fLine.spec, Now: clock, Greeting: []byte("time:")}), "tcp")
		wantOut(t, c, "time:"+ts+"\n", "greeting then time")
	})
	t.Run("unixpacket", func(t *testing.T) {
		c := open(mustNew(t, "daytime", service.Config{Frame: fLen2.spec, Now: clock}), "unixpacket")
		wantOut(t, c, ts+"\r\n", "raw on packets")
	})
	t.Run("default-clock", func(t *testing.T) {
		c := open(mustNew(t, "daytime", service.Config{}), "tcp")
		out := string(c.Take())
		if _, err := time.ParseInLocation("2006-01-02 15:04:05\r\n", out, time.Local); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
	})
	t.Run("too-long-for-len1", func(t *testing.T) {
		log, lb := newLog()
		long := ""
		for range 30 {
			long += "2006-01-02 "
		}
		c := open(mustNew(t, "daytime", service.Config{Frame: fLen1.spec, Now: clock, TimeFormat: long, Logger: log}), "tcp")
		wantOut(t, c, "", "no reply")
		wantClosed(t, c, true, "closed")
		wantLog(t, lb, "level=WARN", "127.0.0.1:40000")
	})
}
