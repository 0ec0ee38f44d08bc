"""The real server, started the documented way from another folder, listens on this computer only.

Streamlit reads `.streamlit/config.toml` from the current folder and from beside the entry script; the
project's settings live beside studio/Home.py so `streamlit run /path/to/studio/Home.py` from anywhere keeps
them (address, upload limit, error details).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "studio" / "Home.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> set[str]:
    """The addresses with a listening TCP socket on `port`, read from /proc/net/tcp and tcp6."""
    found: set[str] = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        table = Path("/proc/net") / name
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port or len(address_hex) != width:
                continue
            # The kernel prints each 32-bit word in host (little-endian) order.
            raw = b"".join(bytes.fromhex(address_hex[i : i + 8])[::-1] for i in range(0, width, 8))
            address = ipaddress.ip_address(raw)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            found.add(str(address))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from /proc/net")
@pytest.mark.parametrize("folder", ["elsewhere", "root"])
def test_server_started_from_any_folder_listens_on_this_computer_only(tmp_path, folder):
    port = _free_port()
    cwd = ROOT if folder == "root" else tmp_path
    env = {
        **os.environ,
        "STORYBOOK_HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    command = [sys.executable, "-m", "streamlit", "run", str(HOME), "--server.port", str(port)]
    server = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (addresses := _listening(port)):
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            assert time.monotonic() < deadline, "the server did not start listening within 60 s"
            time.sleep(0.2)
        time.sleep(0.5)  # a second socket (IPv6) would open right after the first
        addresses = _listening(port)
        assert addresses == {"127.0.0.1"}, f"listening on {sorted(addresses)}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()
