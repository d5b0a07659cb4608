// Package httpd is sockit's http service (`sockit serve http`, SPEC section
// 4): the routes of seed 000's aiohttp server and seed 004's WSGI example on
// the standard library's net/http, and a Server that runs any http.Handler
// on listeners with the admission, concurrency and lifecycle of a
// server.Server.
//
// Routes of the Handler New returns:
//
//	GET /               <h1>Index</h1>               text/html; charset=utf-8
//	GET /hello/{name}   <h1>hello, {name}!</h1>      name percent-decoded, then HTML-escaped
//	GET /healthz        ok\n                         text/plain; charset=utf-8
//	GET /files/...      the files under Config.Root  read-only, when Root is set
//
// HEAD is answered wherever GET is (same headers, no body). A known path with
// another method gets net/http's 405 with an Allow header; any other path
// gets net/http's "404 page not found\n".
package httpd
