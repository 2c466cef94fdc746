"""A headless Chromium driven over the Chrome DevTools Protocol on a pipe, for the browser test
of review.html. Not a test module (no test_ prefix).

``--remote-debugging-pipe`` makes Chromium read CDP commands on its fd 3 and write answers and
events on its fd 4, each message a JSON text ended by a NUL byte ("Chrome DevTools Protocol",
chromedevtools.github.io/devtools-protocol). A pipe needs no port, so nothing else on the
machine can talk to this browser, and the standard library is the whole client.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container: the setuid sandbox cannot start
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--remote-debugging-pipe",
)


def chromium() -> str | None:
    """The Chromium binary to use, or None."""
    path = os.environ.get("EXFIX_CHROMIUM", CHROMIUM)
    return path if os.access(path, os.X_OK) else shutil.which("chromium")


class CdpError(RuntimeError):
    pass


@dataclass
class Browser:
    process: subprocess.Popen[bytes]
    to_browser: int
    from_browser: int
    events: list[dict[str, Any]] = field(default_factory=list)
    _buffer: bytes = b""
    _next: int = 0

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise CdpError("chromium did not answer in time")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise CdpError(f"chromium closed the pipe (exit {self.process.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        loaded: dict[str, Any] = json.loads(message)
        return loaded

    def send(self, method: str, session: str | None = None, timeout: float = 30.0, **params: Any) -> Any:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise CdpError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first event ``method`` (already received or arriving within ``timeout``)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event


@contextmanager
def launch(binary: str) -> Iterator[Browser]:
    """A headless Chromium with its own empty profile, stopped (by its pid) at the end."""
    profile = tempfile.mkdtemp(prefix="exfix-chromium-")
    commands_r, commands_w = os.pipe()  # we write, chromium reads on fd 3
    answers_r, answers_w = os.pipe()  # chromium writes on fd 4, we read

    def child_fds() -> None:
        # Above 4 first, so that neither dup2 closes the other's source.
        commands, answers = (
            fcntl.fcntl(commands_r, fcntl.F_DUPFD, 10),
            fcntl.fcntl(answers_w, fcntl.F_DUPFD, 10),
        )
        os.dup2(commands, 3)
        os.dup2(answers, 4)

    process = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        # close_fds runs after preexec_fn: keep the numbers the dup2 calls fill.
        pass_fds=(3, 4, commands_r, answers_w), preexec_fn=child_fds,
    )  # fmt: skip
    os.close(commands_r)
    os.close(answers_w)
    browser = Browser(process, commands_w, answers_r)
    try:
        yield browser
    finally:
        with suppress(CdpError, OSError):
            browser.send("Browser.close", timeout=5)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        os.close(commands_w)
        os.close(answers_r)
        shutil.rmtree(profile, ignore_errors=True)


def pdf_pages(data: bytes) -> int:
    """The pages of a PDF Chromium printed: its page objects (``/Type /Page``; the page tree is
    ``/Type /Pages``). Chromium's PDF writer (Skia) leaves these dictionaries uncompressed."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


@dataclass
class Tab:
    """One page opened in its own tab, with what it requested and logged while it loaded."""

    browser: Browser
    target: str
    session: str
    url: str

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression``, run by the test through CDP (Runtime.evaluate). The page
        itself runs no script: its CSP allows none, and CDP's evaluation is not the page's."""
        result = self.browser.send("Runtime.evaluate", self.session, expression=expression,
                                   returnByValue=True)  # fmt: skip
        if "exceptionDetails" in result:
            raise CdpError(f"{expression[:60]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requests(self) -> tuple[str, ...]:
        return tuple(
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        )

    def console_errors(self) -> tuple[str, ...]:
        mine = [e for e in self.browser.events if e.get("sessionId") == self.session]
        logged = [e["params"]["entry"] for e in mine if e.get("method") == "Log.entryAdded"]
        called = [e["params"] for e in mine if e.get("method") == "Runtime.consoleAPICalled"]
        thrown = [e["params"]["exceptionDetails"] for e in mine
                  if e.get("method") == "Runtime.exceptionThrown"]  # fmt: skip
        return (
            tuple(f"{e.get('source')}: {e.get('text')}" for e in logged if e.get("level") == "error")
            + tuple(json.dumps(c.get("args")) for c in called if c.get("type") in ("error", "assert"))
            + tuple(str(t.get("text")) for t in thrown)
        )

    def screenshot(self, path: Path, full: bool = False, max_height: int = 12_000) -> None:
        """The first screen (1280x900), or the whole page up to ``max_height`` pixels, as PNG."""
        params: dict[str, Any] = {"format": "png"}
        if full:
            size = self.browser.send("Page.getLayoutMetrics", self.session)["cssContentSize"]
            params["captureBeyondViewport"] = True
            height = min(size["height"], max_height)
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": height, "scale": 1}
        shot = self.browser.send("Page.captureScreenshot", self.session, timeout=120, **params)
        path.write_bytes(base64.b64decode(shot["data"]))

    def pdf(self, path: Path | None = None) -> bytes:
        """The page printed as Chromium's print to PDF does (print media, A4, backgrounds)."""
        printed = self.browser.send("Page.printToPDF", self.session, timeout=120, paperWidth=8.27,
                                    paperHeight=11.69, printBackground=True)  # fmt: skip
        data = base64.b64decode(printed["data"])
        if path is not None:
            path.write_bytes(data)
        return data

    def close(self) -> None:
        self.browser.send("Target.closeTarget", targetId=self.target)


def open_tab(browser: Browser, url: str) -> Tab:
    """``url`` in a new 1280x900 tab, once its load event fired."""
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Network", "Runtime", "Log"):
        browser.send(f"{domain}.enable", session)
    browser.send("Emulation.setDeviceMetricsOverride", session, width=1280, height=900, deviceScaleFactor=1,
                 mobile=False)  # fmt: skip
    browser.events.clear()
    browser.send("Page.navigate", session, url=url)
    browser.wait_for("Page.loadEventFired")
    return Tab(browser, target, session, url)
