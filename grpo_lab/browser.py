"""Headless Chromium for pictures of the report: the system's own browser, started as a plain process.

The report's tests and benchmark drive the same binary with the same flags through Playwright.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import GrpoLabError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Offline and quiet: without these Chromium keeps trying to reach update, sync and safe-browsing servers.
QUIET_FLAGS = ("--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--disable-default-apps", "--hide-scrollbars")  # fmt: skip


def find_chromium() -> str:
    """$CHROMIUM, else the first of CANDIDATES on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        if not Path(explicit).is_file():
            raise GrpoLabError(f"$CHROMIUM is {explicit}, which is not a file")
        return explicit
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise GrpoLabError("no Chromium found (tried $CHROMIUM, " + ", ".join(CANDIDATES) + "); "
                       "install one, e.g. apt-get install chromium")  # fmt: skip


def flags() -> list[str]:
    """Chromium's flags for a headless run; root cannot use its sandbox."""
    return [*QUIET_FLAGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]


def screenshot(html: Path, png: Path, width: int = 1400, height: int = 2200, timeout: float = 120) -> None:
    """A PNG of ``html`` as headless Chromium lays it out in a ``width`` x ``height`` window."""
    png = png.absolute()
    png.parent.mkdir(parents=True, exist_ok=True)
    # Chromium writes a new file beside the target, renamed over it once whole: a screenshot that fails leaves
    # the old one (and whatever a link at that name points to is never written through)
    tmp = png.with_name(f".{png.stem}.tmp{os.getpid()}.png")
    tmp.unlink(missing_ok=True)
    cmd = [find_chromium(), "--headless", *flags(), f"--window-size={width},{height}", f"--screenshot={tmp}",
           "--virtual-time-budget=5000", html.resolve().as_uri()]  # fmt: skip
    try:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise GrpoLabError(f"Chromium took more than {timeout:.0f} s to take the screenshot") from None
        if not tmp.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise GrpoLabError(f"Chromium wrote no screenshot (exit {proc.returncode}): {tail[0]}")
        os.replace(tmp, png)
    finally:
        tmp.unlink(missing_ok=True)
