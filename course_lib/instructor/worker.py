"""The student side: runs inside the sandbox, holds the student's objects, answers requests.

Started as ``python -I -m course_lib.instructor.worker --zygote CTL_FD`` it is the *zygote*:
it imports torch, the checkers and the wire format once, runs no student code ever, and forks
one child per submission (:func:`zygote_main`); the child takes its own session, scratch
folder, namespaces, limits and uid (:func:`_become_submission`) and never returns to it.
Started as ``python -I -m course_lib.instructor.worker CTL_FD`` (the fallback where forking a
zygote is not possible) it imports everything itself. Either way the submission's process runs
the notebook's setup cells and the student's cells (reporting which one it is on, so a cell
that kills the process can be skipped on the next start), then forks one child per test cell. Each child serves requests on its own socket (received over the control socket)
and dies with the cell, so a crash, a hang or state the student's code leaves behind costs one
test cell, not the notebook.

Nothing here is trusted: the student's code runs in this process and may change anything in
it. The grader only ever reads plain data from it (see :mod:`course_lib.instructor.wire`).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import random
import signal
import socket
import sys
import traceback
import types
import warnings
from typing import Any

ERR_LIMIT = 2000  # characters of an error message sent back


def _short(text: str, limit: int = ERR_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_path(t: type) -> str:
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', '?')}"


class _TrustedStub:
    """An object of the grader's (a callable or a module) that the student's code was given."""

    def __init__(self, server: Server, ref: dict) -> None:
        self._server, self._ref = server, ref

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._server.callback("cb_call", self._ref["id"], args=list(args), kwargs=kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") and name not in ("_parameters", "_buffers", "_modules"):
            raise AttributeError(name)  # the grader answers those three for modules only
        return self._server.callback("cb_getattr", self._ref["id"], name=name)

    def __repr__(self) -> str:
        return f"<grader's {self._ref.get('type', 'object')}>"


class Server:
    """Serves one socket: a handle table plus the request loop (used by each forked child)."""

    def __init__(self, sock: socket.socket, ns: dict, wire: Any, grading: Any) -> None:
        self.sock, self.ns, self.wire, self.G = sock, ns, wire, grading
        self.handles: dict[int, Any] = {}
        self.next_id = 1
        self.gens: dict[int, Any] = {}
        # Tensors of the grader's objects (a module's parameters) the student's code was given,
        # by the grader's tensor id: one local tensor per grader tensor (so ``id()`` and
        # repeated reads agree), and its value when received, to send back what was changed.
        self.trusted_tensors: dict[int, tuple[Any, Any]] = {}
        self.clock_now: float | None = None  # the grader's fake clock, while one is running
        self.depth = 0

    # -- encoding ---------------------------------------------------------------------------
    def to_ref(self, obj: Any) -> dict:
        if isinstance(obj, types.GeneratorType | map | filter | zip):
            raise TypeError("iterator")  # materialised by the caller
        hid = self.next_id
        self.next_id += 1
        self.handles[hid] = obj
        t = type(obj)
        meta: dict[str, Any] = {
            "$": "ref",
            "side": "w",
            "id": hid,
            "type": _type_path(t),
            "mro": [_type_path(c) for c in t.__mro__][:32],
            "callable": callable(obj),
            "is_class": isinstance(obj, type),
        }
        if isinstance(obj, type):
            meta["class_mro"] = [_type_path(c) for c in obj.__mro__][:32]
        name = (
            getattr(obj, "__name__", None) if isinstance(obj, type | types.FunctionType) else None
        )
        if isinstance(name, str):
            meta["name"] = name[:200]
        if callable(obj):
            try:
                sig = inspect.signature(obj)
                meta["sig"] = [
                    [p.name, int(p.kind), p.default is not p.empty] for p in sig.parameters.values()
                ][:64]
            except (TypeError, ValueError):
                pass
        return meta

    def encode(self, value: Any) -> tuple[Any, list[bytes]]:
        return self.wire.encode(self._materialise(value), self.to_ref)

    @staticmethod
    def _materialise(value: Any) -> Any:
        if isinstance(value, types.GeneratorType | map | filter | zip):
            out = []
            for i, v in enumerate(value):
                if i >= 100_000:
                    break
                out.append(v)
            return out
        return value

    def from_ref(self, obj: dict) -> Any:
        if obj.get("$") == "gen":
            return self._make_generator(obj)
        if obj.get("side") == "w":
            hid = obj.get("id")
            if hid not in self.handles:
                raise self.wire.WireError(f"unknown handle {hid!r}")
            return self.handles[hid]
        return _TrustedStub(self, obj)

    def _make_generator(self, obj: dict) -> Any:
        kind = obj.get("kind")
        if kind == "torch":
            import torch

            g = torch.Generator()
            g.set_state(self.decode(obj["state"], self._blobs))
        elif kind == "numpy":
            import numpy as np

            state = self.decode(obj["state"], self._blobs)
            name = state.get("bit_generator") if isinstance(state, dict) else None
            if name not in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
                raise self.wire.WireError(f"bit generator {name!r} is not supported")
            g = np.random.Generator(getattr(np.random, name)())
            g.bit_generator.state = state
        elif kind == "random":
            g = random.Random()
            g.setstate(self.decode(obj["state"], self._blobs))
        else:
            raise self.wire.WireError(f"unknown generator kind {kind!r}")
        self.gens[obj["gid"]] = (kind, g)
        return g

    def decode(self, obj: Any, blobs: list[bytes]) -> Any:
        self._blobs = blobs
        return self.wire.decode(obj, blobs, self.from_ref, self._trusted_tensor)

    def _trusted_tensor(self, tid: int, tensor: Any) -> Any:
        if tid in self.trusted_tensors:
            return self.trusted_tensors[tid][0]
        self.trusted_tensors[tid] = (tensor, tensor.detach().clone())
        return tensor

    def send(self, header: dict, value: Any = None, *, has_value: bool = False) -> None:
        blobs: list[bytes] = []
        if has_value:
            header["value"], blobs = self.encode(value)
        self.wire.send_frame(self.sock, header, blobs)

    # -- the loop ---------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            header, blobs = self.wire.recv_frame(self.sock)
            if header.get("op") == "end":
                return
            self.dispatch(header, blobs)

    def callback(self, op: str, ref_id: int, **payload: Any) -> Any:
        value, blobs = self.encode(payload)
        self.wire.send_frame(self.sock, {"op": op, "id": ref_id, "payload": value}, blobs)
        while True:  # the grader may call back into us while computing the answer
            header, blobs = self.wire.recv_frame(self.sock)
            if header.get("op") == "cb_result":
                if isinstance(header.get("clock"), int | float):
                    self.clock_now = float(header["clock"])
                result = self.decode(header.get("value"), blobs)
                if "error" in header:
                    raise RuntimeError(str(header["error"])[:ERR_LIMIT])
                return result
            self.dispatch(header, blobs)

    def dispatch(self, header: dict, blobs: list[bytes]) -> None:
        op = header.get("op")
        self.gens = {}
        try:
            args = self.decode(header.get("args"), blobs) if "args" in header else None
            target = self.handles.get(header.get("id")) if "id" in header else None
            if op == "get":
                name = header.get("name")
                if name not in self.ns:
                    raise NameError(f"name {name!r} is not defined")
                self.send({"op": "result"}, self.ns[name], has_value=True)
                return
            if op == "call":
                self.do_call(header, target, args)
                return
            if op == "getattr":
                value = getattr(target, str(header.get("name")))
            elif op == "setattr":
                setattr(target, str(header.get("name")), args)
                value = None
            elif op == "getitem":
                value = target[args]
            elif op == "setitem":
                target[args[0]] = args[1]
                value = None
            elif op == "len":
                value = int(len(target))
            elif op == "iter":
                value = list(iter(target))[:100_000]
            elif op == "contains":
                value = bool(args in target)
            elif op == "repr":
                value = _short(repr(target), 500)
            elif op == "isinstance":
                value = bool(isinstance(args, target))
            elif op == "issubclass":
                value = bool(isinstance(args, type) and issubclass(args, target))
            elif op == "release":
                for hid in args or []:
                    self.handles.pop(hid, None)
                value = None
            else:
                raise ValueError(f"unknown request {op!r}")
            self.send({"op": "result"}, value, has_value=True)
        except BaseException as exc:  # noqa: BLE001 - everything goes back as an error reply
            if isinstance(exc, KeyboardInterrupt | SystemExit) and op not in ("call",):
                pass
            self.send_error(exc)

    def send_error(self, exc: BaseException, **extra: Any) -> None:
        header = {
            "op": "error",
            "type": type(exc).__name__[:100],
            "mro": [c.__name__[:100] for c in type(exc).__mro__][:16],
            "msg": _short(str(exc)),
            "tb": _short("".join(traceback.format_exception(exc)), 8000),
        }
        header.update(extra)
        self.wire.send_frame(self.sock, header, [])

    def do_call(self, header: dict, target: Any, args: Any) -> None:
        self.depth += 1
        try:
            with self._clock(header.get("clock")):
                self._do_call(header, target, args)
        finally:
            self.depth -= 1
            if self.depth == 0:
                self.trusted_tensors = {}
                self.clock_now = None

    @contextlib.contextmanager
    def _clock(self, now: Any) -> Any:
        """The grader's fake clock, read here: the same clocks patched as in the notebook."""
        if not isinstance(now, int | float) or isinstance(now, bool):
            yield
            return
        from course_lib.grading.clock import CLOCKS

        self.clock_now = float(now)
        saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in CLOCKS]
        try:
            for owner, attr, factor in CLOCKS:
                if factor == 1.0:
                    setattr(owner, attr, lambda: self.clock_now)
                else:
                    setattr(owner, attr, lambda f=factor: int(round(self.clock_now * f)))
            yield
        finally:
            for owner, attr, original in saved:
                setattr(owner, attr, original)

    def _do_call(self, header: dict, target: Any, args: Any) -> None:
        import torch

        call_args, call_kwargs = args
        snapshot = _tensors(call_args, call_kwargs)
        before = [(path, t.detach().clone()) for path, t in snapshot]
        containers = _containers(call_args, call_kwargs)
        forbidden = {str(k): str(v) for k, v in dict(header.get("forbidden") or {}).items()}
        name = str(header.get("name") or getattr(target, "__name__", "your code"))
        blocker = _Blocker(self.G, forbidden, target, name)
        error: BaseException | None = None
        result = None
        violation = blocker.identity()
        if violation is None:
            sink = io.StringIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                saved = sys.stdout, sys.stderr
                sys.stdout = sys.stderr = sink
                try:
                    with blocker:
                        try:
                            result = target(*call_args, **call_kwargs)
                        except self.G.forbidden.ForbiddenCall as exc:
                            violation = str(exc.args[0])
                        except BaseException as exc:  # noqa: BLE001 - reported to the grader
                            error = exc
                    if blocker.violations and violation is None:
                        violation = (
                            blocker.violations[0] + " (and the error was caught inside your code)"
                        )
                finally:
                    sys.stdout, sys.stderr = saved
        writeback = []
        for (path, t), (_, old) in zip(snapshot, before):
            if t.shape != old.shape or t.dtype != old.dtype or not torch.equal(t.detach(), old):
                writeback.append([path, t.detach().clone()])
        written: list[list] = []
        for path, obj, old in containers:
            if any(path[: len(w)] == w for w in written) or not _container_changed(obj, old):
                continue
            written.append(path)
            writeback.append([path, obj])
        for tid, (t, old) in self.trusted_tensors.items():
            if t.shape != old.shape or t.dtype != old.dtype or not torch.equal(t.detach(), old):
                writeback.append([["t", tid], t.detach().clone()])
        gens = []
        for gid, (kind, g) in self.gens.items():
            if kind == "torch":
                gens.append([gid, g.get_state()])
            elif kind == "numpy":
                gens.append([gid, g.bit_generator.state])
            else:
                gens.append([gid, g.getstate()])
        extra_value, extra_blobs = self.encode({"writeback": writeback, "gens": gens})
        if violation is not None:
            self.wire.send_frame(
                self.sock,
                {"op": "forbidden", "msg": _short(violation), "extra": extra_value},
                extra_blobs,
            )
            return
        if error is not None:
            header = {
                "op": "error",
                "type": type(error).__name__[:100],
                "mro": [c.__name__[:100] for c in type(error).__mro__][:16],
                "msg": _short(str(error)),
                "tb": _short("".join(traceback.format_exception(error)), 8000),
            }
            enc = self.wire.Encoder(self.to_ref)
            header["extra"] = enc.encode({"writeback": writeback, "gens": gens})
            self.wire.send_frame(self.sock, header, enc.blobs)
            return
        enc = self.wire.Encoder(self.to_ref)
        header = {"op": "result"}
        header["value"] = enc.encode(self._materialise(result))
        header["extra"] = enc.encode({"writeback": writeback, "gens": gens})
        self.wire.send_frame(self.sock, header, enc.blobs)


class _Blocker:
    """The checker's forbidden names, resolved and blocked *here*, where the student's code
    runs, while one call lasts: every rule whose package this process has loaded (the student
    imported it, at the top of a cell or earlier), and any rule whose package the call itself
    imports (``from sklearn.metrics import f1_score`` inside the function body)."""

    def __init__(self, grading: Any, forbidden: dict[str, str], target: Any, name: str) -> None:
        self.G, self.target, self.name = grading, target, name
        self.pending = dict(forbidden)
        self.violations: list[str] = []
        self.stack = contextlib.ExitStack()
        self.real_import: Any = None

    def _take_loaded(self) -> dict[str, str]:
        usable = {}
        for path in [p for p in self.pending if p.split(".")[0] in sys.modules]:
            why = self.pending.pop(path)
            try:
                self.G.forbidden.targets(path)
            except Exception:  # noqa: BLE001 - not importable here (a hidden reference module)
                continue
            usable[path] = why
        return usable

    def identity(self) -> str | None:
        """The graded name *is* a forbidden object (``f1 = sklearn.metrics.f1_score``)."""
        self.usable = self._take_loaded()
        if not self.usable:
            return None
        return self.G.forbidden.forbidden_identity(self.target, self.usable, self.name)

    def _block(self, usable: dict[str, str]) -> None:
        if usable:
            found = self.stack.enter_context(
                self.G.forbidden.forbid(usable, fn=self.target, name=self.name)
            )
            self._lists.append(found)

    def __enter__(self) -> _Blocker:
        import builtins

        self._lists: list[list[str]] = []
        self._block(self.usable)
        if self.pending:
            self.real_import = real = builtins.__import__

            depth = [0]

            def hooked(*args: Any, **kwargs: Any) -> Any:
                depth[0] += 1
                try:
                    module = real(*args, **kwargs)
                finally:
                    depth[0] -= 1
                if self.pending and depth[0] == 0:  # a package is whole only when all is done
                    self._block(self._take_loaded())
                return module

            builtins.__import__ = hooked
        return self

    def __exit__(self, *exc: Any) -> None:
        import builtins

        if self.real_import is not None:
            builtins.__import__ = self.real_import
        self.stack.close()
        self.violations = [v for found in self._lists for v in found]


def _containers(args: Any, kwargs: Any) -> list[tuple[list, Any, Any]]:
    """The lists and dicts among the arguments, outermost first, with shallow copies: a
    function that changes one in place (``ids[i : i + 2] = [idx]``) changes the grader's."""
    found: list[tuple[list, Any, Any]] = []

    def walk(value: Any, path: list, depth: int) -> None:
        if depth > 16 or len(found) > 10_000:
            return
        if type(value) is list:
            if path:
                found.append((path, value, list(value)))
            for i, v in enumerate(value):
                walk(v, path + [i], depth + 1)
        elif type(value) is tuple:
            for i, v in enumerate(value):
                walk(v, path + [i], depth + 1)
        elif type(value) is dict:
            if path:
                found.append((path, value, dict(value)))
            for k, v in value.items():
                if type(k) in (str, int):
                    walk(v, path + [k], depth + 1)

    walk(list(args), [0], 0)
    for k, v in kwargs.items():
        walk(v, [1, k], 1)
    return [(p, v, old) for p, v, old in found if len(p) > 1]


def _container_changed(obj: Any, old: Any) -> bool:
    if type(obj) is list:
        return len(obj) != len(old) or any(a is not b for a, b in zip(obj, old))
    return obj.keys() != old.keys() or any(obj[k] is not old[k] for k in obj)


def _tensors(args: Any, kwargs: Any) -> list[tuple[list, Any]]:
    import torch

    found: list[tuple[list, Any]] = []

    def walk(value: Any, path: list) -> None:
        if isinstance(value, torch.Tensor):
            found.append((path, value))
        elif type(value) in (list, tuple):
            for i, v in enumerate(value):
                walk(v, path + [i])
        elif type(value) is dict:
            for k, v in value.items():
                if type(k) in (str, int):
                    walk(v, path + [k])

    walk(list(args), [0])
    walk(kwargs, [1])
    return found


def _run_chunks(chunks: list[dict], ns: dict, ctl: socket.socket, wire: Any) -> dict[str, str]:
    errors: dict[str, str] = {}
    for i, chunk in enumerate(chunks):
        wire.send_frame(ctl, {"op": "progress", "chunk": i}, [])
        sink = io.StringIO()
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = sink
        try:
            code = compile(chunk["source"], f"<cell {chunk['id']}>", "exec")
            exec(code, ns)  # noqa: S102 - this is the sandbox: running student code is its job
        except BaseException as exc:  # noqa: BLE001 - SystemExit and friends too
            name = f"<cell {chunk['id']}>"
            lines = [
                f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == name
            ]
            where = f" (line {lines[-1]})" if lines and not isinstance(exc, SyntaxError) else ""
            errors[chunk["id"]] = _short(f"{type(exc).__name__}: {exc}{where}", 500)
        finally:
            sys.stdout, sys.stderr = saved
            sink.seek(0)
            sink.truncate()
    return errors


def limit_plan(limits: Any, *, own_uid: bool) -> list[tuple[str, tuple[int, int]]]:
    """The resource limits a student's process gets, as ``(RLIMIT_ name, (soft, hard))``, from
    ``limits`` (a :class:`.sandbox.Limits`, or its fields as attributes).

    ``RLIMIT_NPROC`` counts every process and thread of a uid, so it is set only when the
    process has a uid of its own: with the caller's uid (``course check`` run by a student) it
    would count their browser and editor too, and the forks the tests need would fail.
    ``RLIMIT_AS`` is Linux's: macOS does not enforce an address-space limit (there it is
    ``RLIMIT_RSS``) and its processes reserve far more address space than they use.
    """
    mem = int(limits.memory_mb) * 1024 * 1024
    size = int(limits.max_file_mb) * 1024 * 1024
    cpu, nproc = int(limits.cpu_seconds), int(limits.max_processes)
    plan = [
        ("RLIMIT_AS", (mem, mem)),
        ("RLIMIT_CPU", (cpu, cpu + 5)),
        ("RLIMIT_NPROC", (nproc, nproc)),
        ("RLIMIT_FSIZE", (size, size)),
        ("RLIMIT_CORE", (0, 0)),
    ]
    if not own_uid:
        plan = [p for p in plan if p[0] != "RLIMIT_NPROC"]
    if not sys.platform.startswith("linux"):
        plan = [p for p in plan if p[0] != "RLIMIT_AS"]
    return plan


def apply_limits(limits: Any, *, own_uid: bool) -> list[str]:
    """Set :func:`limit_plan`'s limits on this process; the names of those the system refused.

    On Linux every limit must hold (an error propagates: no student code runs without them).
    Elsewhere a limit the system refuses is left as it was, so that a self-check still runs
    with process isolation and the limits the system takes.
    """
    refused = []
    for name, value in limit_plan(limits, own_uid=own_uid):
        import resource

        which = getattr(resource, name, None)
        try:
            if which is None:
                raise ValueError(f"{name} does not exist here")
            resource.setrlimit(which, value)
        except (ValueError, OSError):
            if sys.platform.startswith("linux"):
                raise
            refused.append(name)
    return refused


def _imports() -> tuple[Any, Any]:
    """What every student process starts with: torch (one thread), matplotlib (Agg), the
    checkers and the wire format. The zygote imports them once, before any student code."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a huge write fails instead of killing us
    import matplotlib

    matplotlib.use("Agg")
    import torch

    torch.set_num_threads(1)
    from course_lib import grading
    from course_lib.instructor import wire

    return grading, wire


def serve_submission(ctl: socket.socket, grading: Any, wire: Any) -> None:
    """One submission: load its cells, then fork one child per test cell until told to stop."""
    import torch

    header, blobs = wire.recv_frame(ctl)
    if header.get("op") != "load":
        raise SystemExit("expected a load request")
    from course_lib.grading import summary

    summary.GRADER_PROCESS = True  # an edited ``G.check_all()`` cell returns at once
    main_module = types.ModuleType("__main__")
    main_module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main_module
    ns = main_module.__dict__
    torch.manual_seed(0)
    random.seed(0)
    errors = _run_chunks(header["chunks"], ns, ctl, wire)
    defined = {}
    for name in header.get("names", []):
        if name in ns:
            defined[name] = type(ns[name]).__name__
    wire.send_frame(ctl, {"op": "loaded", "errors": errors, "defined": defined}, [])
    children: set[int] = set()
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(ctl, 1 << 16, 1)
        except OSError:
            break
        if not msg:
            break
        op = msg.decode(errors="replace")
        if op == "fork" and fds:
            try:
                pid = os.fork()
            except OSError as exc:  # out of processes (a fork bomb left behind)
                os.close(fds[0])
                wire.send_frame(ctl, {"op": "fork_failed", "msg": str(exc)[:200]}, [])
                continue
            if pid == 0:
                os.setpgid(0, 0)  # its own group, so everything it forks dies with it
                ctl.close()
                sock = socket.socket(fileno=fds[0])
                server = Server(sock, ns, wire, grading)
                try:
                    server.serve()
                finally:
                    os._exit(0)
            os.close(fds[0])
            children.add(pid)
            wire.send_frame(ctl, {"op": "forked", "pid": pid}, [])
        elif op.startswith(("reap", "kill")):
            for pid in list(children):
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                os.waitpid(pid, 0)
                children.discard(pid)
            _reap_orphans()
            wire.send_frame(ctl, {"op": "reaped"}, [])
        elif op == "exit":
            break


def _reap_orphans() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


# ---------------------------------------------------------------------------------------------
# The zygote: torch imported, no student code ever run; one forked child per submission.
# ---------------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
# New IPC (System V objects outlive their processes), UTS and network namespaces.
_CLONE_PRIVATE = 0x08000000 | 0x04000000 | 0x40000000


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _become_submission(spec: dict, sock: socket.socket) -> None:
    """In the zygote's fresh child, before any student code: its own session, environment,
    namespaces, limits and uid (the uid change drops every capability the zygote had), then
    its scratch folder and log, entered as that uid."""
    import ctypes

    libc = _libc()
    os.setsid()  # its own session and process group
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the zygote
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(spec["env"]).items()})
    if libc.unshare(_CLONE_PRIVATE) != 0 and spec.get("require_private"):
        err = ctypes.get_errno()
        raise OSError(err, f"cannot enter private namespaces: {os.strerror(err)}")
    uid = spec.get("uid")
    apply_limits(types.SimpleNamespace(**dict(spec["limits"])), own_uid=uid is not None)
    if uid is not None:
        os.setgroups([])
        os.setgid(int(uid))
        os.setuid(int(uid))  # all of uid, euid and saved uid: no way back, no capabilities
        if os.getuid() == 0 or os.geteuid() == 0:
            raise OSError("the uid did not change")
    scratch = str(spec["scratch"])  # entered as the submission's uid: its folder alone
    os.chdir(scratch)
    log = os.open(os.path.join(scratch, "worker.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 2)
    os.close(log)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 and spec.get("require_private"):
        raise OSError("cannot set no_new_privs")


def _kill_submission(pid: int, uid: int | None, children: dict[int, int | None]) -> None:
    """Kill a submission's process group, then, when it had a uid of its own, every process
    of that uid (a helper that takes the uid and signals everything it may: ``kill(-1)``)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)
    if uid is not None and os.getuid() == 0:
        helper = os.fork()
        if helper == 0:
            try:
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(helper, 0)
    if pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    children.pop(pid, None)
    _reap_orphans()


def zygote_main(ctl_fd: int) -> None:
    """Import once, then fork a submission per ``spawn`` request (its socket comes with it)."""
    import json

    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    ctl = socket.socket(fileno=ctl_fd)
    grading, wire = _imports()
    wire.send_frame(ctl, {"op": "ready"}, [])
    children: dict[int, int | None] = {}  # pid -> the uid it took
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(ctl, 1 << 20, 1)
        except OSError:
            break
        if not msg:
            break
        try:
            request = json.loads(msg.decode())
        except (UnicodeDecodeError, json.JSONDecodeError):
            break  # only the grader writes here
        op = request.get("op")
        if op == "spawn" and fds:
            try:
                pid = os.fork()
            except OSError as exc:
                os.close(fds[0])
                wire.send_frame(ctl, {"op": "spawn_failed", "msg": str(exc)[:200]}, [])
                continue
            if pid == 0:
                ctl.close()
                sock = socket.socket(fileno=fds[0])
                try:
                    _become_submission(request, sock)
                except BaseException as exc:  # noqa: BLE001 - the grader's fault, said so
                    with contextlib.suppress(OSError):
                        wire.send_frame(sock, {"op": "setup_failed", "msg": str(exc)[:500]}, [])
                    os._exit(3)
                try:
                    serve_submission(sock, grading, wire)
                finally:
                    os._exit(0)
            os.close(fds[0])
            uid = request.get("uid")
            children[pid] = None if uid is None else int(uid)
            wire.send_frame(ctl, {"op": "spawned", "pid": pid}, [])
        elif op == "kill":
            uid = request.get("uid")
            _kill_submission(int(request["pid"]), None if uid is None else int(uid), children)
            wire.send_frame(ctl, {"op": "killed"}, [])
        else:
            break
        _reap_orphans()
    for pid, uid in list(children.items()):  # the grader has gone: so does everything else
        _kill_submission(pid, uid, children)
    os._exit(0)


def main() -> None:
    if sys.argv[1] == "--zygote":
        zygote_main(int(sys.argv[2]))
        return
    ctl_fd = int(sys.argv[1])
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    ctl = socket.socket(fileno=ctl_fd)
    grading, wire = _imports()
    serve_submission(ctl, grading, wire)
    os._exit(0)


if __name__ == "__main__":
    main()
