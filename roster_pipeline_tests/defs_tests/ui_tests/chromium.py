"""Headless Chromium for the UI tests: load a page, save a screenshot, return the DOM; read the screenshot back."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

WIDTH, HEIGHT = 1600, 1000


def chromium_binary() -> str:
    binary = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if binary is None:
        pytest.fail(
            "chromium is not installed: run `make test` as root (it installs Debian's chromium before the tests) "
            "or `sudo apt-get install -y chromium`"
        )
    return binary


def render(url: str, screenshot: Path, profile: Path) -> str:
    """Load `url` in headless Chromium, save a screenshot and return the DOM after the page's scripts ran."""
    command = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        # The screenshot is taken after 15 s of virtual time, which stands still while requests are pending:
        # GraphQL answered and the layout drawn, however slow the machine.
        "--virtual-time-budget=15000",
        "--dump-dom",
        f"--screenshot={screenshot}",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0 and screenshot.exists(), f"chromium failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


def png_rgb_rows(data: bytes) -> tuple[int, int, list[list[tuple[int, int, int]]]]:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes) into rows of RGB pixels."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    position, compressed = 8, bytearray()
    width = height = depth = color_type = interlace = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    assert depth == 8 and color_type in (2, 6) and not interlace, f"unexpected PNG format {depth=} {color_type=}"
    channels = 3 if color_type == 2 else 4
    stride = width * channels
    raw = zlib.decompress(bytes(compressed))
    previous, rows = bytearray(stride), []
    for y in range(height):
        start = y * (stride + 1)
        filter_type, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                estimate = left + up - up_left
                nearest = min((left, up, up_left), key=lambda value: abs(estimate - value))
                line[i] = (line[i] + nearest) & 0xFF
        rows.append([(line[x], line[x + 1], line[x + 2]) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows
