package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports m to Prometheus with constant labels (service,
// endpoint, engine): sockit_messages_received_total,
// sockit_messages_sent_total, sockit_received_bytes_total,
// sockit_sent_bytes_total, sockit_write_pauses_total and the histogram
// sockit_message_handling_seconds. Register one per Meter; Meters with the
// same metric names need different label values.
func Collector(m *Meter, labels prometheus.Labels) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, labels) }
	return &collector{m: m, descs: [6]*prometheus.Desc{
		d("sockit_messages_received_total", "Messages received (framed as --frame says; each datagram is one)."),
		d("sockit_messages_sent_total", "Messages sent: replies, greetings and generated messages."),
		d("sockit_received_bytes_total", "Bytes of the messages received, framing excluded."),
		d("sockit_sent_bytes_total", "Bytes of the messages sent, framing excluded."),
		d("sockit_write_pauses_total", "Times a connection's write buffer passed its high watermark and reading from it paused."),
		d("sockit_message_handling_seconds", "Time from the read that completed a message to its reply queued (the messages of one read share one time; an http request: its handler's time)."),
	}}
}

type collector struct {
	m     *Meter
	descs [6]*prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Snapshot()
	for i, v := range []uint64{s.MessagesIn, s.MessagesOut, s.BytesIn, s.BytesOut, s.Pauses} {
		ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(v))
	}
	buckets := make(map[float64]uint64, Buckets)
	var cum uint64
	for i := 0; i < Buckets; i++ {
		cum += s.Buckets[i]
		buckets[BucketBound(i).Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.descs[5], s.Count, s.Sum.Seconds(), buckets)
}
