"""An HTTP endpoint on 127.0.0.1: throttles the first N calls of one action, forwards the rest to moto."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

EC2_THROTTLE = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>'
    b"<Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled</RequestID></Response>"
)


class ThrottlingProxy:
    def __init__(self, target_url: str, throttle_first: int, action: str = "DescribeInstances") -> None:
        self.target_url = target_url
        self.action = action
        self.throttle_first = throttle_first
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if f"Action={proxy.action}".encode() in body:
                    proxy.requests += 1
                if f"Action={proxy.action}".encode() in body and proxy.requests <= proxy.throttle_first:
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(EC2_THROTTLE)))
                    self.end_headers()
                    self.wfile.write(EC2_THROTTLE)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream = requests.post(proxy.target_url + self.path, data=body, headers=headers, timeout=30)
                self.send_response(upstream.status_code)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
