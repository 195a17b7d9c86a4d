"""A small static web server for the built browser demo (``slfm deploy web --serve``) and the parity harness's
browser target: the folder's files with the MIME types browsers insist on (``application/wasm`` for
instantiateStreaming, JavaScript modules), plus optional extra routes (the harness's input/output exchange).
HTTPS with a self-signed certificate for phones on the local network (camera access needs a secure context).
"""

from __future__ import annotations

import functools
import http.server
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from slfm.errors import SlfmError

MIME = {
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".json": "application/json",
    ".tflite": "application/octet-stream",
    ".css": "text/css",
    ".html": "text/html",
}
# (method, path) -> (status, content type, body); None: not handled here
Routes = Callable[[str, str, bytes], tuple[int, str, bytes] | None]


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}

    def __init__(self, *a, routes: Routes | None = None, quiet: bool = True, **kw) -> None:
        self.routes, self.quiet = routes, quiet
        super().__init__(*a, **kw)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")  # a rebuilt page is picked up on reload
        super().end_headers()

    def _route(self, method: str) -> bool:
        if self.routes is None:
            return False
        n = int(self.headers.get("Content-Length") or 0)
        hit = self.routes(method, self.path.split("?")[0], self.rfile.read(n) if n else b"")
        if hit is None:
            return False
        status, ctype, body = hit
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        if not self._route("GET"):
            super().do_GET()

    def do_POST(self) -> None:  # noqa: N802
        if not self._route("POST"):
            self.send_error(404)

    def log_message(self, fmt: str, *args) -> None:
        if not self.quiet:
            super().log_message(fmt, *args)


class WebServer:
    """``root`` served on ``host:port`` (port 0: any free one) in a background thread; a context manager."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        routes: Routes | None = None,
        tls: tuple[Path, Path] | None = None,
        quiet: bool = True,
    ) -> None:
        handler = functools.partial(Handler, directory=str(root), routes=routes, quiet=quiet)
        try:
            self.httpd = http.server.ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise SlfmError(f"cannot serve on {host}:{port}: {e.strerror or e}") from e
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*map(str, tls))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.host, self.port = host, self.httpd.server_address[1]
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> WebServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="slfm-web", daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def lan_addresses() -> list[str]:
    """This machine's address on the local network (for a phone's browser), if it has one."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))  # UDP: no packet is sent; picks the outgoing interface
        ip = s.getsockname()[0]
    except OSError:
        return []
    finally:
        s.close()
    return [] if ip.startswith("127.") else [ip]


def self_signed_cert(folder: Path, hosts: list[str]) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for ``hosts`` (IPs or names) made with openssl; (cert, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    san = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in ["localhost", *hosts])
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=slfm web demo"]
    cmd += ["-addext", f"subjectAltName={san}", "-keyout", str(key), "-out", str(cert)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SlfmError(f"cannot make a self-signed certificate with openssl: {e}") from e
    if r.returncode != 0:
        raise SlfmError(f"openssl failed making a certificate: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    key.chmod(0o600)
    return cert, key
