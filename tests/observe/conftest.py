"""Fixtures for observe tests: real Pushgateway and node_exporter processes on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from collections.abc import Iterator

import pytest

from tests.observe.helpers import free_port, need_binary, start_server, stop


@pytest.fixture
def pushgateway(tmp_path: object) -> Iterator[str]:
    """A real Pushgateway on 127.0.0.1; yields its base URL."""
    binary = need_binary("prometheus-pushgateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server([binary, f"--web.listen-address=127.0.0.1:{port}"], url + "/-/ready")
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture
def node_exporter(tmp_path: os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """A real node_exporter with only the textfile collector; yields (metrics URL, folder)."""
    binary = need_binary("prometheus-node-exporter")
    folder = os.path.join(os.fspath(tmp_path), "textfile")
    os.makedirs(folder)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    argv = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        "--collector.textfile",
        f"--collector.textfile.directory={folder}",
    ]
    proc = start_server(argv, url)
    try:
        yield url, folder
    finally:
        stop(proc)


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, object]]
    delay: float = 0.0
    fail_first: int = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        server.calls += 1  # type: ignore[attr-defined]
        if server.calls <= server.fail_first:  # type: ignore[attr-defined]
            self.send_response(503)
            self.end_headers()
            return
        time.sleep(server.delay)  # type: ignore[attr-defined]
        server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[http.server.ThreadingHTTPServer]:
    """A real HTTP server on 127.0.0.1 recording POSTed JSON (``received``, ``calls``); set
    ``delay`` to answer slowly and ``fail_first`` to answer 503 to the first N requests."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    server.calls = 0  # type: ignore[attr-defined]
    server.delay = 0.0  # type: ignore[attr-defined]
    server.fail_first = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
