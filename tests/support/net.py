"""Loopback networking helpers."""

from __future__ import annotations

import os
import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel picks it, so parallel runs don't clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def is_ci() -> bool:
    """True under CI (CI=true/1/yes): there, missing prerequisites must fail, not skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")
