"""One authenticated session with vCenter: connect, log in, and log in again when the session is lost.

Credentials come from the config (``password_env`` or ``password_file``); the password is held only
by this module, never logged and never put in an error message.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import ssl
import threading
import time
from typing import Any, Callable, TypeVar

from ...config import VCenterConfig
from ...errors import SourceError
from ...errors.validation import read_secret_file

log = logging.getLogger("balancer.vcenter")

T = TypeVar("T")

# How often an operation is retried after the session was lost, and the pauses between attempts.
RELOGIN_BACKOFF = (0.5, 1.0, 2.0)


def read_password(vc: VCenterConfig) -> str:
    """The vCenter password from the environment variable or the file the config names."""
    if vc.password_env is not None:
        value = os.environ.get(vc.password_env)
        if value is None or value == "":
            raise SourceError(f"vcenter: environment variable {vc.password_env} (password_env) is not set")
        return value
    assert vc.password_file is not None
    return read_secret_file(vc.password_file, "vcenter: password_file", SourceError)


def endpoint(vc: VCenterConfig) -> str:
    return f"{vc.protocol}://{vc.host}:{vc.port}"


def ssl_context(vc: VCenterConfig) -> ssl.SSLContext | None:
    """TLS verification is on unless the config turns it off; ca_file adds a trusted CA bundle."""
    if vc.protocol == "http":
        return None
    if not vc.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=str(vc.ca_file) if vc.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise SourceError(f"vcenter: ca_file {vc.ca_file}: cannot load: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """A short human reason for a low-level exception (no traceback, no credentials)."""
    msg = getattr(exc, "msg", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, (OSError, http.client.HTTPException, ssl.SSLError, socket.timeout))


def describe(exc: BaseException) -> str:
    """One line for any exception raised by a vCenter call."""
    from pyVmomi import vim, vmodl

    if isinstance(exc, SourceError):
        return str(exc)
    if isinstance(exc, vmodl.fault.ManagedObjectNotFound):
        return "object no longer exists"
    if isinstance(exc, vim.fault.NotAuthenticated):
        return "session is not authenticated"
    if isinstance(exc, vmodl.MethodFault):
        text = getattr(exc, "msg", None) or ""
        name = type(exc).__name__.rsplit(".", 1)[-1]
        return f"{name}: {' '.join(text.split())}" if text else name
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {_reason(exc)}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, http.client.HTTPException):
        return f"connection lost ({type(exc).__name__})"
    if isinstance(exc, OSError):
        return f"connection failed: {_reason(exc)}"
    return f"{type(exc).__name__}: {_reason(exc)}"


class ObjectGone(SourceError):
    """The managed object a call was made on no longer exists (ManagedObjectNotFound)."""


class Unanswered(SourceError):
    """A call that may have reached vCenter got no answer (the connection broke or timed out after it was
    sent): vCenter may have carried it out."""


def _unanswered(exc: BaseException) -> bool:
    """Did the call fail after it may have been sent, with no answer from vCenter (not a fault it answered,
    nor a connection that was never made)?"""
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror, ssl.SSLCertVerificationError)):
        return False  # never connected: the call was not sent
    if isinstance(exc, ssl.SSLError):
        return True  # the TLS connection broke (EOF, reset) while the call or its reply was on the way
    return isinstance(exc, (socket.timeout, TimeoutError, http.client.HTTPException, OSError))


class Connection:
    """A logged-in pyvmomi service instance, shared by the collector and the executor (thread-safe)."""

    def __init__(self, vc: VCenterConfig):
        self.vc = vc
        self.where = f"vcenter {vc.host}:{vc.port}"
        self._password = read_password(vc)
        self._lock = threading.Lock()
        self._si: Any = None
        self._content: Any = None
        self._generation = 0
        self.connect()

    def __repr__(self) -> str:  # never show the password
        return f"Connection({endpoint(self.vc)}, user={self.vc.user!r})"

    # --- session --------------------------------------------------------------------------
    def connect(self) -> None:
        from pyVim.connect import SmartConnect
        from pyVmomi import vim

        ctx = ssl_context(self.vc)
        kwargs: dict[str, Any] = dict(
            protocol=self.vc.protocol,
            host=self.vc.host,
            port=self.vc.port,
            user=self.vc.user,
            pwd=self._password,
            httpConnectionTimeout=max(1, int(self.vc.timeout)),
        )
        if ctx is not None:
            kwargs["sslContext"] = ctx
            if not self.vc.verify_tls:
                kwargs["disableSslCertValidation"] = True
        try:
            si = SmartConnect(**kwargs)
        except vim.fault.InvalidLogin:
            raise SourceError(f"{self.where}: login failed for user {self.vc.user!r} (wrong user name or password)") from None
        except vim.fault.NoPermission:
            raise SourceError(f"{self.where}: user {self.vc.user!r} has no permission to log in") from None
        except ssl.SSLCertVerificationError as exc:
            raise SourceError(
                f"{self.where}: TLS certificate verification failed ({_reason(exc)}); "
                "set ca_file to the vCenter CA bundle"
            ) from None
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear line
            raise SourceError(f"{self.where}: cannot connect: {describe(exc)}") from None
        try:
            content = si.RetrieveContent()  # a data object: read once, then no round trip per use
        except Exception as exc:  # noqa: BLE001
            raise SourceError(f"{self.where}: cannot read the service content: {describe(exc)}") from None
        with self._lock:
            self._si = si
            self._content = content
            self._generation += 1
        log.info("connected to %s as %s", endpoint(self.vc), self.vc.user)

    def _relogin(self, generation: int) -> None:
        """Log in again on the same SOAP stub, so managed-object references stay valid."""
        from pyVmomi import vim

        with self._lock:
            if generation != self._generation:
                return  # another thread already logged in again
            try:
                self._content.sessionManager.Login(self.vc.user, self._password)
            except vim.fault.InvalidLogin:
                raise SourceError(
                    f"{self.where}: session lost and logging in again failed for user {self.vc.user!r}"
                ) from None
            self._generation += 1
        log.warning("vCenter session was lost; logged in again")

    @property
    def si(self) -> Any:
        if self._si is None:
            raise SourceError(f"{self.where}: connection is closed")
        return self._si

    @property
    def content(self) -> Any:
        if self._content is None:
            raise SourceError(f"{self.where}: connection is closed")
        return self._content

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one or more vCenter calls); log in again and retry when the session was lost.

        Any other failure becomes a SourceError naming ``what``.
        """
        from pyVmomi import vim, vmodl

        for attempt in range(len(RELOGIN_BACKOFF) + 1):
            generation = self._generation
            try:
                return fn()
            except vim.fault.NotAuthenticated:
                if attempt == len(RELOGIN_BACKOFF):
                    raise SourceError(f"{self.where}: {what}: session lost and could not be restored") from None
                time.sleep(RELOGIN_BACKOFF[attempt])
                try:
                    self._relogin(generation)
                except SourceError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    if attempt == len(RELOGIN_BACKOFF) - 1:
                        raise SourceError(f"{self.where}: {what}: session lost; logging in again failed: {describe(exc)}") from None
            except SourceError:
                raise
            except vmodl.fault.ManagedObjectNotFound:
                raise ObjectGone(f"{self.where}: {what}: object no longer exists") from None
            except Exception as exc:  # noqa: BLE001
                kind = Unanswered if _unanswered(exc) else SourceError
                raise kind(f"{self.where}: {what}: {describe(exc)}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        from pyVim.connect import Disconnect

        with self._lock:
            si, self._si, self._content = self._si, None, None
        if si is not None:
            try:
                Disconnect(si)
            except Exception:  # noqa: BLE001 - closing a dead session is not an error
                pass
