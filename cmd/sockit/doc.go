// Command sockit is the binary of the sockit toolkit: `sockit serve` runs the
// built-in services (echo, discard, chargen, daytime, hello, upper, reply,
// http) on any endpoint; `send`, `connect`, `listen`, `relay`, `http` and
// `fetch` are the clients; `bench` is the load generator. Each command is a
// thin cobra layer over the library packages (endpoint, server, service,
// client, bench); `sockit COMMAND --help` shows its flags and examples.
package main
