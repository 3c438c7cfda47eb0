"""Open a report in headless Chromium and check it really renders (used by the tests and CI).

Why the DevTools protocol over a pipe: Chromium's ``--remote-debugging-pipe`` speaks the
DevTools protocol (JSON messages separated by NUL bytes) on file descriptors 3 and 4, so
only the standard library is needed — no websocket client, no Playwright. Through it we
load the page, collect console errors, uncaught exceptions, failed loads and any request
that leaves the machine, ask the page which images decoded, and take a full-page
screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Flags that work in containers without a GPU, a sandbox or a network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium binary (``PPX_CHROMIUM`` wins), or None."""
    env = os.environ.get("PPX_CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class RenderResult:
    """What the browser saw."""

    screenshot: bytes
    width: int
    height: int
    images_total: int
    images_loaded: int
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    title: str = ""

    def ink_fraction(self) -> float:
        """Share of screenshot pixels that are not (near) white: 0 means blank."""
        import numpy as np
        from PIL import Image

        img = np.asarray(Image.open(io.BytesIO(self.screenshot)).convert("L"))
        return float((img < 245).mean()) if img.size else 0.0


class _Pipe:
    """Minimal DevTools client over the two pipes."""

    def __init__(self, write_fd: int, read_fd: int):
        self.w = os.fdopen(write_fd, "wb", buffering=0)
        self.r = os.fdopen(read_fd, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def close(self) -> None:
        for f in (self.w, self.r):
            with contextlib.suppress(OSError):
                f.close()

    def _read_message(self, deadline: float) -> dict:
        import select

        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.r.fileno(), 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.w.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def drain(self, seconds: float) -> None:
        """Collect events for a short while (late console messages, image errors)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_message(deadline))
        except TimeoutError:
            pass


def _describe(ev: dict) -> str | None:
    """A console error / exception / failed load as text, or None for harmless events."""
    method, p = ev.get("method"), ev.get("params", {})
    if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
        return f"console.{p['type']}: {args}"
    if method == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        return f"uncaught: {d.get('exception', {}).get('description') or d.get('text')}"
    if method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
        e = p["entry"]
        return f"log {e.get('source')}: {e.get('text')} {e.get('url', '')}".strip()
    if method == "Network.loadingFailed" and not p.get("canceled"):
        return f"load failed: {p.get('errorText')}"
    return None


def render(
    html_path: str | Path,
    chromium: str | None = None,
    width: int = 1200,
    height: int = 900,
    timeout: float = 60.0,
) -> RenderResult:
    """Load ``html_path`` in headless Chromium and report what rendered.

    Raises:
        FileNotFoundError: no Chromium binary (install Debian's ``chromium`` package).
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary on PATH (apt-get install chromium)")
    url = Path(html_path).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="ppx-chromium-")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def child_fds() -> None:  # runs in the child before exec: fds 3 and 4 are the pipes
        a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(a, 3)
        os.dup2(b, 4)

    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=False,
        preexec_fn=child_fds,  # noqa: PLW1509 - no threads are started between fork and exec
    )
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(to_chrome_w, from_chrome_r)
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
        session = pipe.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        pipe.call("Page.navigate", {"url": url}, session=session, timeout=timeout)
        pipe.wait_event("Page.loadEventFired", timeout)
        pipe.drain(0.5)
        probe = pipe.call(
            "Runtime.evaluate",
            {
                "expression": (
                    "JSON.stringify({title: document.title, imgs: [...document.images]"
                    ".map(i => [i.complete, i.naturalWidth])})"
                ),
                "returnByValue": True,
            },
            session=session,
        )
        page = json.loads(probe["result"]["value"])
        metrics = pipe.call("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics.get("contentSize")
        full_h = int(min(size["height"], 16000))
        shot = pipe.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": full_h, "scale": 1},
            },
            session=session,
            timeout=timeout,
        )
        errors, external = [], []
        for ev in pipe.events:
            if (text := _describe(ev)) is not None:
                errors.append(text)
            if ev.get("method") == "Network.requestWillBeSent":
                req_url = ev["params"]["request"]["url"]
                if not req_url.startswith(("file:", "data:", "about:")):
                    external.append(req_url)
        imgs = page["imgs"]
        with contextlib.suppress(RuntimeError, TimeoutError):
            pipe.call("Browser.close", timeout=10)
        return RenderResult(
            screenshot=base64.b64decode(shot["data"]),
            width=width,
            height=full_h,
            images_total=len(imgs),
            images_loaded=sum(1 for ok, w in imgs if ok and w > 0),
            console_errors=errors,
            external_requests=external,
            title=page.get("title", ""),
        )
    finally:
        pipe.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
