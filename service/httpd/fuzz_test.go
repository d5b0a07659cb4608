package httpd_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/sockit/sockit/service/httpd"
)

// FuzzHello: any name (but ".", ".." and "/", see below), percent-encoded into the path, comes back
// HTML-escaped in the body, and the handler never panics.
func FuzzHello(f *testing.F) {
	for _, s := range []string{"Michael", "<script>", "a/b", "你好", "%2e%2e", "\x00", "&amp;", "a b", "'\""} {
		f.Add(s)
	}
	h, err := httpd.New(httpd.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		// "." and ".." are no names: net/http's router cleans them out of
		// the path and redirects (/hello/. → /hello). And the router takes
		// a lone encoded slash (/hello/%2F) for a trailing slash: 404.
		if name == "" || name == "." || name == ".." || name == "/" || !utf8.ValidString(name) {
			return
		}
		target := "/hello/" + url.PathEscape(name)
		req := httptest.NewRequest(http.MethodGet, "http://x"+target, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		want := "<h1>hello, " + html.EscapeString(name) + "!</h1>"
		if w.Code != http.StatusOK || w.Body.String() != want {
			t.Fatalf("GET %s: %d %q, want 200 %q", target, w.Code, w.Body.String(), want)
		}
		if ct := w.Header().Get("Content-Type"); ct != httpd.ContentTypeHTML {
			t.Fatalf("Content-Type %q", ct)
		}
	})
}
