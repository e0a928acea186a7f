"""Network namespaces: run a command, a block of code or an event loop inside one.

A Linux network namespace belongs to a thread, not a process: ``setns(CLONE_NEWNET)`` moves
only the calling thread, and every socket keeps the namespace it was created in. So a thread
that enters a host's namespace and creates its sockets there (a simulator's server, an HTTP
client's connections) talks from that host, while the rest of the process stays where it was,
and a thread started from inside inherits the namespace. Processes of a host are started with
``ip netns exec``. Needs root (CAP_SYS_ADMIN), like ``ip netns`` itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import os
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/var/run/netns"
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def entered(namespace: str) -> Iterator[None]:
    """This thread inside ``namespace`` for the block; back where it was afterwards."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(os.path.join(NETNS_DIR, namespace), os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(target)
        os.close(original)


def exec_argv(namespace: str, argv: list[str]) -> list[str]:
    """``argv`` run inside ``namespace`` (``ip netns exec`` also gives it the namespace's own
    ``/etc/netns/<name>`` files, none here, and a fresh sysfs)."""
    return ["ip", "netns", "exec", namespace, *argv]


def pod_argv(namespace: str, argv: list[str]) -> list[str]:
    """``argv`` run as a pod's container runs: inside ``namespace`` and in a PID namespace of its
    own (with its own ``/proc``), so it sees only its own processes and all of them die with
    it. Ray looks for a running cluster by reading every raylet's command line it can see
    (``ray start --head`` refuses an address another raylet names): on one machine without
    this, the head would see the worker hosts' raylets, which with GCS fault tolerance keep
    naming the head's address while they wait for it to come back. ``--kill-child``: when
    ``unshare`` itself is signalled, its child (the namespace's init) and so every process of
    the pod is killed."""
    return exec_argv(
        namespace, ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *argv]
    )


class NamespaceLoop:
    """An asyncio event loop on a thread living inside ``namespace``: coroutines submitted with
    ``run`` open their connections from that host."""

    def __init__(self, namespace: str, name: str | None = None) -> None:
        self.namespace = namespace
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(
            target=self._main, name=name or f"netns-{namespace}", daemon=True
        )
        self._thread.start()
        self._ready.wait(10)
        if self._failed is not None:
            raise self._failed
        if self.loop is None:
            raise RuntimeError(f"the event loop of {namespace} did not start")

    def _main(self) -> None:
        try:
            target = os.open(os.path.join(NETNS_DIR, self.namespace), os.O_RDONLY)
            try:
                _setns(target)  # for the rest of this thread's life
            finally:
                os.close(target)
            self.loop = asyncio.new_event_loop()
        except BaseException as exc:  # noqa: BLE001 - handed to the constructor
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        return self.submit(coro).result(timeout_s)

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


def in_namespace(namespace: str, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` called on a fresh thread inside ``namespace`` (threads ``fn`` starts stay
    there: a simulator's server thread, for instance); returns its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with entered(namespace):
                box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-call-{namespace}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")
