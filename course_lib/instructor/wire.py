"""The message format between the trusted grader and a sandboxed student process.

No pickle: a message is a JSON header plus raw byte blobs. Values travel by value when they are
plain data — ``None``, bool, int, float, str, list, tuple, dict (any keys), ``torch.Tensor``
and ``numpy.ndarray`` (dtype + shape + raw bytes), numpy scalars, ``torch.dtype``/``device``/
``Size``, slices — and everything else travels as a *reference* to an object that stays in the
process that owns it (a handle). Decoding only ever builds these plain types, so whatever the
untrusted side sends, the trusted side gets data, never code.

Frame: ``u32 header length, u32 number of blobs, header (UTF-8 JSON), then per blob u64 length
+ bytes``. A frame larger than :data:`MAX_FRAME` is refused.
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

MAX_FRAME = 1 << 30  # 1 GiB: larger messages are a memory bomb, not an answer
MAX_ITEMS = 1_000_000  # containers longer than this are refused

TORCH_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
        torch.uint8,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.bool,
    )
}
NUMPY_KINDS = set("biufc")  # bool, int, uint, float, complex: never object or void arrays


class WireError(Exception):
    """A malformed or oversized message: the other side is broken or hostile."""


class ChannelClosed(WireError):
    """The other side went away (process died or closed its end)."""


# ---------------------------------------------------------------------------------------------
# Framing over a connected socket.
# ---------------------------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ChannelClosed("the other side closed the channel")
        got += k
    return bytes(buf)


def send_frame(sock: socket.socket, header: dict, blobs: list[bytes]) -> None:
    head = json.dumps(header, allow_nan=True).encode()
    parts = [struct.pack("<II", len(head), len(blobs)), head]
    for b in blobs:
        parts.append(struct.pack("<Q", len(b)))
        parts.append(b)
    sock.sendall(b"".join(parts))


def recv_frame(sock: socket.socket, max_frame: int = MAX_FRAME) -> tuple[dict, list[bytes]]:
    head_len, n_blobs = struct.unpack("<II", _recv_exact(sock, 8))
    if head_len > max_frame or n_blobs > MAX_ITEMS:
        raise WireError(f"frame header too large ({head_len} bytes, {n_blobs} blobs)")
    try:
        header = json.loads(_recv_exact(sock, head_len))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"frame header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WireError("frame header must be a JSON object")
    blobs, total = [], head_len
    for _ in range(n_blobs):
        (n,) = struct.unpack("<Q", _recv_exact(sock, 8))
        total += n
        if total > max_frame:
            raise WireError(f"frame larger than {max_frame} bytes")
        blobs.append(_recv_exact(sock, n))
    return header, blobs


# ---------------------------------------------------------------------------------------------
# Values.
# ---------------------------------------------------------------------------------------------


class Encoder:
    """Turns a value into JSON + blobs; ``to_ref`` is asked for anything that is not data."""

    def __init__(
        self,
        to_ref: Callable[[Any], dict],
        tensor_tag: Callable[[torch.Tensor], int] | None = None,
    ) -> None:
        self.to_ref = to_ref
        self.tensor_tag = tensor_tag  # names tensors the other side may write back into
        self.blobs: list[bytes] = []

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > 64:
            raise WireError("value nested more than 64 levels deep")
        t = type(value)
        if value is None or t in (bool, str):
            return value
        if t is int:
            return value if abs(value) < 2**53 else {"$": "bigint", "v": str(value)}
        if t is float:
            return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
        if isinstance(value, torch.Tensor):  # subclasses too: only the raw data travels
            return self.tensor(value)
        if t is list:
            return [self.encode(v, depth + 1) for v in value]
        if t is tuple:
            return {"$": "tuple", "v": [self.encode(v, depth + 1) for v in value]}
        if t is torch.Size:
            return {"$": "size", "v": [int(v) for v in value]}
        if t in (dict, OrderedDict):
            return {
                "$": "dict",
                "v": [
                    [self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()
                ],
            }
        if t is np.ndarray and value.dtype.kind in NUMPY_KINDS:
            arr = np.ascontiguousarray(value)
            return {
                "$": "nd",
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "b": self.blob(arr.tobytes()),
            }
        if isinstance(value, np.generic) and value.dtype.kind in NUMPY_KINDS:
            return {"$": "npscalar", "dtype": value.dtype.str, "b": self.blob(value.tobytes())}
        if t is torch.dtype:
            return {"$": "dtype", "v": str(value).removeprefix("torch.")}
        if t is torch.device:
            return {"$": "device", "v": str(value)}
        if t is slice:
            return {
                "$": "slice",
                "v": [self.encode(x, depth + 1) for x in (value.start, value.stop, value.step)],
            }
        if value is Ellipsis:
            return {"$": "ellipsis"}
        if t is bytes:
            return {"$": "bytes", "b": self.blob(value)}
        return self.to_ref(value)

    def tensor(self, value: torch.Tensor) -> dict:
        name = str(value.dtype).removeprefix("torch.")
        if name not in TORCH_DTYPES or value.layout != torch.strided or value.is_quantized:
            return self.to_ref(value)
        plain = value.detach().cpu().contiguous()
        flat = plain.reshape(-1)  # 0-d tensors cannot be viewed as bytes directly
        raw = flat.view(torch.uint8) if plain.numel() and plain.dtype != torch.uint8 else flat
        data = raw.numpy().tobytes() if plain.numel() else b""
        out = {
            "$": "tensor",
            "dtype": name,
            "shape": list(plain.shape),
            "rg": bool(value.requires_grad),
            "b": self.blob(data),
        }
        if self.tensor_tag is not None:
            out["tid"] = self.tensor_tag(value)
        return out


class Decoder:
    """Builds plain values from JSON + blobs; ``from_ref`` resolves handles."""

    def __init__(
        self,
        blobs: list[bytes],
        from_ref: Callable[[dict], Any],
        tensor_hook: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.blobs = blobs
        self.from_ref = from_ref
        self.tensor_hook = tensor_hook  # sees every tensor tagged by the sender's tensor_tag
        self.count = 0

    def _blob(self, index: Any) -> bytes:
        if type(index) is not int or not 0 <= index < len(self.blobs):
            raise WireError(f"bad blob index {index!r}")
        return self.blobs[index]

    def decode(self, obj: Any, depth: int = 0) -> Any:
        self.count += 1
        if depth > 64 or self.count > MAX_ITEMS:
            raise WireError("value too deep or too large")
        if obj is None or type(obj) in (bool, int, float, str):
            return obj
        if type(obj) is list:
            return [self.decode(v, depth + 1) for v in obj]
        if type(obj) is not dict or type(obj.get("$")) is not str:
            raise WireError(f"unexpected value of type {type(obj).__name__} in a message")
        tag = obj["$"]
        if tag == "tuple":
            return tuple(self.decode(v, depth + 1) for v in self._list(obj))
        if tag == "size":
            return torch.Size([int(v) for v in self._list(obj)])
        if tag == "dict":
            out = {}
            for pair in self._list(obj):
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("dict items must be pairs")
                key = self.decode(pair[0], depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise WireError("unhashable dict key") from None
                out[key] = self.decode(pair[1], depth + 1)
            return out
        if tag == "bigint":
            return int(str(obj.get("v")))
        if tag == "float":
            v = str(obj.get("v"))
            if v not in ("nan", "inf", "-inf"):
                raise WireError(f"bad float {v!r}")
            return float(v)
        if tag == "tensor":
            t = self._tensor(obj)
            tid = obj.get("tid")
            if self.tensor_hook is not None and type(tid) is int:
                return self.tensor_hook(tid, t)
            return t
        if tag == "nd":
            dtype = np.dtype(str(obj.get("dtype")))
            if dtype.kind not in NUMPY_KINDS:
                raise WireError(f"numpy dtype {dtype} is not allowed")
            shape = self._shape(obj)
            arr = np.frombuffer(self._blob(obj.get("b")), dtype=dtype)
            if arr.size != math.prod(shape):
                raise WireError("ndarray size does not match its shape")
            return arr.reshape(shape).copy()
        if tag == "npscalar":
            dtype = np.dtype(str(obj.get("dtype")))
            if dtype.kind not in NUMPY_KINDS:
                raise WireError(f"numpy dtype {dtype} is not allowed")
            data = np.frombuffer(self._blob(obj.get("b")), dtype=dtype)
            if data.size != 1:
                raise WireError("numpy scalar must hold one value")
            return data[0]
        if tag == "dtype":
            name = obj.get("v")
            if name not in TORCH_DTYPES:
                raise WireError(f"dtype {name!r} is not allowed")
            return TORCH_DTYPES[name]
        if tag == "device":
            return torch.device(str(obj.get("v")))
        if tag == "slice":
            parts = [self.decode(v, depth + 1) for v in self._list(obj)]
            if len(parts) != 3 or not all(p is None or type(p) is int for p in parts):
                raise WireError("slice must have three int-or-None parts")
            return slice(*parts)
        if tag == "ellipsis":
            return Ellipsis
        if tag == "bytes":
            return self._blob(obj.get("b"))
        if tag in ("ref", "gen"):
            return self.from_ref(obj)
        raise WireError(f"unknown tag {tag!r}")

    def _list(self, obj: dict) -> list:
        v = obj.get("v")
        if type(v) is not list:
            raise WireError("expected a list")
        return v

    def _shape(self, obj: dict) -> list[int]:
        shape = obj.get("shape")
        if type(shape) is not list or not all(type(s) is int and 0 <= s < 2**40 for s in shape):
            raise WireError("bad shape")
        return shape

    def _tensor(self, obj: dict) -> torch.Tensor:
        name = obj.get("dtype")
        if name not in TORCH_DTYPES:
            raise WireError(f"tensor dtype {name!r} is not allowed")
        dtype = TORCH_DTYPES[name]
        shape = self._shape(obj)
        data = self._blob(obj.get("b"))
        n = math.prod(shape)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(data) != n * itemsize:
            raise WireError("tensor byte count does not match its shape and dtype")
        if n == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dtype).reshape(shape)
        if obj.get("rg") is True and (dtype.is_floating_point or dtype.is_complex):
            t.requires_grad_(True)
        return t


def encode(value: Any, to_ref: Callable[[Any], dict]) -> tuple[Any, list[bytes]]:
    enc = Encoder(to_ref)
    return enc.encode(value), enc.blobs


def decode(
    obj: Any,
    blobs: list[bytes],
    from_ref: Callable[[dict], Any],
    tensor_hook: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
) -> Any:
    return Decoder(blobs, from_ref, tensor_hook).decode(obj)


def socketpair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of Unix stream sockets, both inheritable by child processes."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    os.set_inheritable(b.fileno(), True)
    return a, b
