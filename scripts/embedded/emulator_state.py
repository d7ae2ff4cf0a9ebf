"""moto's state in the data folder: restored at start, snapshotted while running, saved at stop.

What LocalStack does with PERSISTENCE=1, for the services the stack uses (and any other moto
keeps state for): every backend moto holds (DynamoDB tables and items, SQS queues with their
messages, DLQs included, S3 buckets and objects, secrets, the bus and its rules) is pickled into
``<data>/emulator/<process>.pickle``.

- At a clean stop the state is saved last, after deliveries drained.
- While running, a snapshot is taken every ``interval`` seconds when anything was called since
  the last one. LocalStack's scheduled snapshots pause every API call while they are written;
  here the emulator's lock is held only to fork(): the child process pickles the copy-on-write
  image of the state and writes it, while the parent goes on answering. A crash loses at most
  the calls of one interval plus one snapshot's writing time.
- When the stack dies, the emulator process saves before exiting (it outlives its parent).
- A file that cannot be read is moved aside (``.damaged``) and said so; its services start empty.

Writes go to a temporary file, fsync'ed, then renamed over the old one: a reader sees the old
snapshot or the new one, never half of one.
"""
from __future__ import annotations

import copyreg
import gc
import io
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = 1
_BACKEND_DICT_ATTRIBUTES = {"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"}
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))

Backends = dict[tuple[str, str, str], object]  # (service, account, region) -> moto backend


def _archive_without_events(archive) -> tuple:
    state = dict(archive.__dict__, events=[])
    return copyreg.__newobj__, (type(archive),), state


class _Pickler(pickle.Pickler):
    """moto keeps locks in some models (SQS queues, S3 keys): a lock or condition is saved as a new one.

    moto's EventBridge archives are saved without their events: the stack's own archive
    (archive.jsonl) is the one replays read, and moto's copy would make every snapshot grow with
    every event ever sent (DescribeArchive's EventCount starts again at 0 after a restart)."""

    def reducer_override(self, obj):
        if isinstance(obj, _LOCK_TYPES):
            return (threading.RLock if "RLock" in type(obj).__name__ else threading.Lock), ()
        if type(obj) is threading.Condition:  # SQS queues': a fresh one, without a long poll's waiters
            return threading.Condition, ()
        if type(obj).__name__ == "Archive" and type(obj).__module__ == "moto.events.models":
            return _archive_without_events(obj)
        return NotImplemented


def capture(owned: Callable[[str], bool]) -> tuple[Backends, dict[str, dict]]:
    """The backends moto holds for the services this process owns, and each service's own
    service-wide records (S3 keeps which account owns each bucket name beside the backends:
    without it a restored bucket would be created anew, empty, by the next CreateBucket)."""
    from moto.core.base_backend import BackendDict

    services = [backends for backends in list(BackendDict._instances) if owned(backends.service_name)]
    backends = {(service.service_name, account, region): backend
                for service in services for account, region, backend in list(service.iter_backends())}
    extras = {service.service_name: {k: v for k, v in vars(service).items() if k not in _BACKEND_DICT_ATTRIBUTES}
              for service in services}
    return backends, {name: found for name, found in extras.items() if found}


def encode(captured: tuple[Backends, dict[str, dict]], taken_at: float) -> bytes:
    import moto

    backends, extras = captured
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(
        {"format": FORMAT, "moto": moto.__version__, "taken_at": taken_at, "backends": backends, "extras": extras})
    return buffer.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


@dataclass
class Restored:
    services: set[str] = field(default_factory=set)
    taken_at: float | None = None  # the oldest snapshot restored from
    skipped: list[str] = field(default_factory=list)  # what could not be read, said in one line each


def restore(folder: Path, owned: Callable[[str], bool], own_file: str | None = None) -> Restored:
    """Put the newest saved backend of every owned service back into moto. Damage is reported
    (and the file moved aside) by the process whose file it is: ``own_file``, or any without it."""
    import moto
    from moto.backends import get_backend

    report = Restored()
    if own_file is not None:  # a snapshot's writer killed mid-way left its temporary file
        for leftover in folder.glob(f".{own_file}.*.tmp"):
            leftover.unlink(missing_ok=True)
    newest: dict[str, tuple[float, dict, dict]] = {}  # service -> (taken_at, {(account, region): backend}, extras)
    for path in sorted(folder.glob("*.pickle")) if folder.is_dir() else ():
        try:
            with open(path, "rb") as file:
                saved = pickle.load(file)
            if saved.get("format") != FORMAT:
                raise ValueError(f"format {saved.get('format')!r}, not {FORMAT}")
            taken_at, backends = float(saved["taken_at"]), dict(saved["backends"])
            extras = dict(saved.get("extras", {}))
        except Exception as exc:  # any damage: say so, keep the file for a look, start without it
            if own_file is not None and path.name != own_file:
                continue  # another emulator process's file: it says so, once
            aside = path.with_suffix(".damaged")
            try:
                os.replace(path, aside)
            except OSError:
                pass
            report.skipped.append(f"{path.name}: {type(exc).__name__}: {str(exc)[:200]}; moved to {aside.name}, "
                                  f"its services start empty (this is moto {moto.__version__})")
            continue
        by_service: dict[str, dict] = {}
        for (service, account, region), backend in backends.items():
            by_service.setdefault(service, {})[(account, region)] = backend
        for service, held in by_service.items():  # each service from the newest file that has it
            if owned(service) and (service not in newest or newest[service][0] <= taken_at):
                newest[service] = (taken_at, held, extras.get(service, {}))
    for service, (taken_at, backends, extras) in newest.items():
        try:
            service_backends = get_backend(service)
        except Exception as exc:  # a service this moto no longer has
            report.skipped.append(f"{service}: {exc}")
            continue
        for (account, region), backend in backends.items():
            dict.__setitem__(service_backends[account], region, backend)  # past moto's lazy creation
        for name, value in extras.items():
            setattr(service_backends, name, value)
        report.services.add(service)
        report.taken_at = taken_at if report.taken_at is None else min(report.taken_at, taken_at)
    return report


class Snapshots:
    """Saves this emulator process's backends under ``lock`` (the one every moto call takes)."""

    def __init__(self, path: Path, lock: threading.Lock, owned: Callable[[str], bool], interval: float,
                 calls: Callable[[], int] = lambda: 1):
        self.path = path
        self.lock = lock
        self.owned = owned
        self.interval = interval
        self.calls = calls  # how many calls moto has answered: a snapshot only when it moved
        self._seen = 0
        self._stop = threading.Event()
        self.last: dict = {}  # taken_at, seconds, bytes of the last snapshot written

    def save(self) -> dict:
        """Now, in this process (at stop: nothing else is running)."""
        started = time.monotonic()
        with self.lock:
            taken_at = time.time()
            data = encode(capture(self.owned), taken_at)
        write_atomically(self.path, data)
        self.last = {"taken_at": taken_at, "seconds": round(time.monotonic() - started, 3), "bytes": len(data)}
        return self.last

    def snapshot(self) -> int | None:
        """In a forked child: the lock is held only while forking, so moto stops for a moment,
        and the copy-on-write child writes the state as it was then. The child's pid."""
        if not hasattr(os, "fork"):
            self.save()
            return None
        with self.lock:
            self._seen = self.calls()
            taken_at = time.time()
            pid = os.fork()
            if pid == 0:  # the child: only this thread exists here; write and leave at once
                gc.disable()  # nothing it allocates outlives it
                os.nice(19)  # on a busy machine the calls being answered come first
                code = 0
                try:
                    write_atomically(self.path, encode(capture(self.owned), taken_at))
                except BaseException:
                    code = 1
                os._exit(code)
        return pid

    def run(self) -> None:
        """Every ``interval`` seconds, a snapshot if anything changed; until stop()."""
        while not self._stop.wait(self.interval):
            if self.calls() == self._seen:
                continue
            pid = self.snapshot()
            if pid:
                os.waitpid(pid, 0)  # one at a time: a slow disk must not pile up children

    def start(self) -> None:
        if self.interval > 0:
            threading.Thread(target=self.run, name="emulator-snapshots", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
