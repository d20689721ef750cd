package influx

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// gzipTransport compresses the body of every POST that is not encoded yet,
// with gzip writers taken from a pool.
//
// The InfluxDB client's own gzip option builds a new gzip.Writer, a pipe and
// a goroutine for every request, and a gzip.Writer's compressor state is
// about 1 MB: at a city's rate, with small batches, that was more than half of
// everything the service allocated and set the garbage collector's pace
// (BenchmarkPublishToAlert). A pooled writer is Reset instead, and
// BestSpeed compresses line protocol about as well for a fraction of the CPU.
type gzipTransport struct {
	next http.RoundTripper
}

// gzipWriters holds idle *gzip.Writer at gzip.BestSpeed.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // the level is valid: no error
	return zw
}}

// newGzipClient returns the HTTP client the writer gives the InfluxDB
// client: the client's own transport settings, requests compressed by
// gzipTransport, and timeout as a backstop.
func newGzipClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: gzipTransport{next: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
	}}}
}

// RoundTrip compresses req's body and sends it with Content-Encoding: gzip;
// requests without a body, not POST, or already encoded go as they are.
func (t gzipTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody || req.Method != http.MethodPost || req.Header.Get("Content-Encoding") != "" {
		return t.next.RoundTrip(req)
	}
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	_, err := io.Copy(zw, req.Body)
	req.Body.Close()
	if err == nil {
		err = zw.Close()
	}
	zw.Reset(io.Discard) // drop the reference to buf before pooling
	gzipWriters.Put(zw)
	if err != nil {
		return nil, fmt.Errorf("influx: gzip request body: %w", err)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Content-Encoding", "gzip")
	body := buf.Bytes()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return t.next.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the transport inside,
// so that http.Client.CloseIdleConnections reaches them.
func (t gzipTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
