"""Starting and stopping the bundled ``acs-identity`` binary."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Optional, Sequence

#: The platform whose binary this wheel carries (its tag says the same to pip).
SUPPORTED_PLATFORM = ("linux", "x86_64")
BINARY_ENV = "ACS_IDENTITY_BINARY"
_BINARY_NAME = "acs-identity"


class AcsIdentityError(RuntimeError):
    """The service could not be started or did not say it was ready."""


class UnsupportedPlatformError(AcsIdentityError):
    """This wheel's binary does not run on this platform."""


def _check_platform() -> None:
    machine = platform.machine().lower()
    if sys.platform != SUPPORTED_PLATFORM[0] or machine not in ("x86_64", "amd64"):
        raise UnsupportedPlatformError(
            "the acs_identity package carries the acs-identity binary for linux x86-64 only; "
            f"this is {sys.platform} {platform.machine()}. Build the service from source "
            "(cargo install --path crates/acs_identity_cli --locked) and point "
            f"{BINARY_ENV} at it."
        )


def binary_path() -> Path:
    """The ``acs-identity`` binary: ``$ACS_IDENTITY_BINARY``, else the one this wheel
    installed into the environment's scripts directory."""
    override = os.environ.get(BINARY_ENV)
    if override:
        return Path(override)
    _check_platform()
    candidates: List[Path] = []
    for scheme in (None, f"{os.name}_user"):
        with contextlib.suppress(KeyError):
            scripts = sysconfig.get_path("scripts") if scheme is None else sysconfig.get_path("scripts", scheme)
            candidates.append(Path(scripts) / _BINARY_NAME)
    # `pip install --target DIR` puts scripts in DIR/bin beside the package.
    candidates.append(Path(__file__).resolve().parent.parent / "bin" / _BINARY_NAME)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(_BINARY_NAME)
    if found:
        return Path(found)
    raise AcsIdentityError(
        f"cannot find the {_BINARY_NAME} binary of the acs_identity wheel "
        f"(looked in {', '.join(str(c.parent) for c in candidates)} and PATH); "
        f"set {BINARY_ENV} to its path"
    )


class AcsIdentity:
    """A running ``acs-identity serve --in-memory`` process.

    ``connection_string``, ``endpoint`` (https), ``http_endpoint`` (or ``None``),
    ``ca_file`` (the development CA's PEM, or ``None`` with your own certificate) and
    ``pid`` come from the service's ready line. ``stop()`` (or leaving the ``with`` block)
    stops it; everything it kept is in memory or in a temporary directory it removes.
    """

    connection_string: str
    endpoint: str
    http_endpoint: Optional[str]
    ca_file: Optional[str]
    pid: int

    def __init__(self, process: "subprocess.Popen[bytes]", ready: Dict[str, Any], stderr: Deque[str]):
        self._process = process
        self._stderr = stderr
        self.connection_string = ready["connectionString"]
        self.endpoint = ready["endpoint"]
        self.http_endpoint = ready.get("httpEndpoint")
        self.ca_file = ready.get("caFile")
        self.pid = ready.get("pid", process.pid)
        # Stop the service with the interpreter if the caller forgets to.
        self._finalizer = weakref.finalize(self, _terminate, process, 10.0)

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """Stops the service (SIGTERM, then SIGKILL after ``timeout`` seconds) and returns
        its exit code. Calling it again does nothing."""
        self._finalizer.detach()
        return _terminate(self._process, timeout)

    def __enter__(self) -> "AcsIdentity":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        # The connection string holds the access key: never print it.
        state = "running" if self.running else "stopped"
        return f"<AcsIdentity {self.endpoint} pid={self.pid} {state}>"


def _terminate(process: "subprocess.Popen[bytes]", timeout: float) -> int:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _drain(stream: Any, lines: "Optional[queue.Queue[Optional[str]]]", tail: Deque[str]) -> None:
    """Reads `stream` to its end (so the service never blocks on a full pipe); hands the
    first line to `lines` and keeps the last lines in `tail` for error messages."""
    first = lines is not None
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if first and lines is not None:
            lines.put(line)
            first = False
        else:
            tail.append(line)
    if first and lines is not None:
        lines.put(None)
    stream.close()


def start(
    *,
    http: bool = False,
    dev: bool = False,
    skip_api_version_check: bool = False,
    args: Sequence[str] = (),
    env: Optional[Dict[str, str]] = None,
    binary: Optional[os.PathLike] = None,
    timeout: float = 30.0,
) -> AcsIdentity:
    """Starts an in-memory service on a free loopback port and waits until it is ready.

    ``http`` also serves plain HTTP on a free port; ``dev`` uses the well-known development
    key; ``skip_api_version_check`` serves unknown api-versions as the newest one; ``args``
    are more ``serve`` flags; ``env`` is added to the service's environment.
    """
    command = [
        str(binary) if binary is not None else str(binary_path()),
        "serve",
        "--in-memory",
        "--output",
        "json",
        "--listen",
        "127.0.0.1:0",
    ]
    if http:
        command += ["--http-listen", "127.0.0.1:0"]
    if dev:
        command.append("--dev")
    if skip_api_version_check:
        command.append("--skip-api-version-check")
    command += list(args)
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        # Nothing of the service in the caller's working directory.
        cwd=tempfile.gettempdir(),
    )
    stderr: Deque[str] = collections.deque(maxlen=50)
    stdout_tail: Deque[str] = collections.deque(maxlen=5)
    first: "queue.Queue[Optional[str]]" = queue.Queue()
    assert process.stdout is not None and process.stderr is not None
    threading.Thread(target=_drain, args=(process.stdout, first, stdout_tail), daemon=True).start()
    threading.Thread(target=_drain, args=(process.stderr, None, stderr), daemon=True).start()

    def fail(why: str) -> AcsIdentityError:
        _terminate(process, 5.0)
        log = "\n".join(stderr)
        return AcsIdentityError(f"acs-identity serve {why}" + (f"; its log:\n{log}" if log else ""))

    try:
        line = first.get(timeout=timeout)
    except queue.Empty:
        raise fail(f"printed no ready line within {timeout} s") from None
    if line is None:
        process.wait(5.0)
        raise fail(f"exited with code {process.returncode} before it was ready")
    try:
        ready = json.loads(line)
        if ready.get("event") != "ready":
            raise ValueError("not a ready event")
    except ValueError:
        raise fail(f"printed {line[:200]!r} instead of its JSON ready line") from None
    return AcsIdentity(process, ready, stderr)


@contextlib.contextmanager
def trust_ca(ca_file: Optional[str]) -> Iterator[Optional[str]]:
    """Makes HTTPS clients of this process trust ``ca_file`` in addition to the CAs they
    trusted before, until the block ends.

    It writes a bundle (the CAs ``requests`` used so far — ``$REQUESTS_CA_BUNDLE`` or
    certifi's — plus ``ca_file``) to a temporary file and points ``REQUESTS_CA_BUNDLE``
    (read by ``requests`` on every request, the Azure SDKs' default transport) and
    ``SSL_CERT_FILE`` (read by ``ssl.create_default_context``, used by ``aiohttp``) at it.
    Both variables are restored and the file removed afterwards. Yields the bundle's path.
    """
    if not ca_file:
        yield None
        return
    names = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    saved = {name: os.environ.get(name) for name in names}
    base = saved["REQUESTS_CA_BUNDLE"] or saved["SSL_CERT_FILE"] or _default_bundle()
    parts = []
    if base and os.path.isfile(base):
        parts.append(Path(base).read_text())
    parts.append(Path(ca_file).read_text())
    fd, bundle = tempfile.mkstemp(prefix="acs-identity-ca-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(parts))
        for name in names:
            os.environ[name] = bundle
        yield bundle
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        with contextlib.suppress(FileNotFoundError):
            os.remove(bundle)


def _default_bundle() -> Optional[str]:
    try:
        import certifi  # a dependency of requests, so of every Azure SDK

        return certifi.where()
    except ImportError:
        import ssl

        return ssl.get_default_verify_paths().cafile
