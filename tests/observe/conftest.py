"""Fixtures for observe tests: real Pushgateway and node_exporter processes on 127.0.0.1."""

from __future__ import annotations

import os
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
