# Conformance of sockit's http service as Python's urllib sees it: for each
# METHOD:PATH in argv it prints one JSON line with the status, content type,
# Allow header and body.
import json
import sys
import urllib.error
import urllib.request

host = sys.argv[1]
port = int(sys.argv[2])
for spec in sys.argv[3:]:
    method, path = spec.split(":", 1)
    req = urllib.request.Request("http://%s:%d%s" % (host, port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, headers, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    print(json.dumps({
        "method": method,
        "path": path,
        "status": status,
        "content_type": headers.get("Content-Type", ""),
        "content_length": headers.get("Content-Length", ""),
        "allow": headers.get("Allow", ""),
        "body": body.decode("utf-8"),
    }, ensure_ascii=False))
