"""Codecs for exchanged halo rows: what crosses the wire instead of float32, and how much it costs.

A codec turns a float32 ``rows x D`` block into one 2-D *wire* tensor (a single dtype, so one
``Communicator.exchange`` carries it and the communicator counts its true size) and back:

* ``none``: the block itself, ``4 D`` bytes a row; exact.
* ``fp16``: a cast, ``2 D`` bytes a row. Relative error per element at most ``2^-11`` (round to nearest, 11
  significant bits) for ``|x|`` in fp16's normal range ``[6.1e-5, 65504]``; smaller values lose relative
  precision (absolute error at most ``2^-25``), larger ones overflow to inf: hidden activations and
  gradients of the small GNNs here sit well inside that range.
* ``int8``: symmetric per-row quantisation. Each row's scale ``s`` is ``max_j |x_j| / 127`` rounded *up* to
  float16 (so no entry exceeds 127 levels), ``q = round(x / s)`` in ``[-127, 127]``, decoded ``q * s``. A row
  travels as ``D`` int8 bytes followed by its float16 scale's 2 bytes, packed into one uint8 row of ``D + 2``
  bytes: wire size ``D + 2`` bytes a row against ``4 D`` (28 % of float32 at ``D = 16``, 32 % at ``D = 7``,
  ~25 % for wide rows; a float32 scale would cost 31 % and 39 % on Cora's narrow rows). Error bound per
  element: ``|x - dec(enc(x))| <= s / 2`` with ``s`` the transmitted scale, ``s <= (1 + 2^-10) max|x| / 127``
  while that is in float16's normal range (``>= 2^-14``; below it ``s`` exceeds ``max|x| / 127`` by at most
  float16's smallest step ``2^-24``): rounding to the nearest level, and the scale is per
  row, so a row's error follows its own largest entry. Rows whose largest entry exceeds ``127 * 65504``
  (float16's range) are not representable; activations and gradients here are many orders smaller. A zero
  row has ``s = 0`` and decodes exactly.

Training applies the codec to forward rows and to the halo gradients sent back, and treats it as the identity
in autograd (straight-through): the gradient of a decoded row is passed to its owner as if it were the row.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dgnn_lab.registry import Registry

CODECS = ("none", "fp16", "int8")


class Codec:
    """Identity codec (float32 on the wire). Subclasses change :meth:`encode`, :meth:`decode`,
    :meth:`wire_width` and :meth:`row_bytes` together (the communicator counts what ``encode`` returns, so
    ``row_bytes`` must tell the truth: tests compare the two). Keyword options become attributes."""

    name = "none"

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)
        for key, value in options.items():
            setattr(self, key, value)

    def encode(self, x: Tensor) -> Tensor:
        """The wire tensor for a float32 block ``x`` (rows x D), one dtype, same number of rows."""
        return x

    def decode(self, wire: Tensor, width: int) -> Tensor:
        """The float32 block (rows x ``width``) a wire tensor stands for."""
        return wire

    def wire_width(self, width: int) -> int:
        """Columns of the wire tensor for rows of ``width`` floats."""
        return width

    def row_bytes(self, width: int) -> int:
        """Bytes one row of ``width`` floats costs on the wire."""
        return 4 * width

    def wire_bytes(self, rows: int, width: int) -> int:
        """Bytes a block of ``rows`` x ``width`` costs on the wire."""
        return int(rows) * self.row_bytes(width)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Fp16Codec(Codec):
    """Half precision: a cast each way (see the module docstring for the error)."""

    name = "fp16"

    def encode(self, x: Tensor) -> Tensor:
        return x.to(torch.float16)

    def decode(self, wire: Tensor, width: int) -> Tensor:
        return wire.to(torch.float32)

    def row_bytes(self, width: int) -> int:
        return 2 * width


class Int8Codec(Codec):
    """Symmetric per-row int8 with the float16 scale packed behind each row (``D + 2`` bytes a row)."""

    name = "int8"

    @staticmethod
    def scales(x: Tensor) -> Tensor:
        """Per-row scale (float16, rows x 1): ``max |x| / 127`` rounded up to a float16 value."""
        s = x.detach().abs().amax(dim=1, keepdim=True).to(torch.float32) / 127.0
        h = s.to(torch.float16)
        return torch.where(h.to(torch.float32) < s, torch.nextafter(h, torch.full_like(h, float("inf"))), h)

    def encode(self, x: Tensor) -> Tensor:
        x = x.detach().to(torch.float32)
        rows = x.shape[0]
        h = self.scales(x)
        s = h.to(torch.float32)
        safe = torch.where(s > 0, s, torch.ones_like(s))
        q = torch.round(x / safe).clamp_(-127, 127).to(torch.int8)
        out = torch.empty((rows, x.shape[1] + 2), dtype=torch.uint8, device=x.device)
        out[:, :-2] = q.view(torch.uint8)
        out[:, -2:] = h.reshape(-1).contiguous().view(torch.uint8).view(rows, 2)
        return out

    def decode(self, wire: Tensor, width: int) -> Tensor:
        rows = wire.shape[0]
        q = wire[:, :width].view(torch.int8).to(torch.float32)
        s = wire[:, width:width + 2].reshape(-1).clone().view(torch.float16).view(rows, 1)
        return q * s.to(torch.float32)

    def wire_width(self, width: int) -> int:
        return width + 2

    def row_bytes(self, width: int) -> int:
        return width + 2


#: The codec axis: ``register_codec("mine", MyCodec)`` makes ``codec="mine"`` train with it.
CODEC_REGISTRY = Registry("codec", base=Codec, hint="encode, decode, wire_width, row_bytes",
                          builtins=(Codec, Fp16Codec, Int8Codec))
register_codec = CODEC_REGISTRY.register


def get_codec(spec: Any = None) -> Codec:
    """The codec ``spec`` names (``none``, ``fp16``, ``int8``, a registered or ``module:attribute`` name, a
    class or an instance; ``None`` means ``none``), as an instance."""
    if spec is None:
        spec = "none"
    if isinstance(spec, str) and ":" not in spec:
        spec = spec.lower()
    return CODEC_REGISTRY.build(spec)


def error_bound(codec: Codec, x: Tensor) -> Tensor:
    """The documented per-element bound on ``|x - decode(encode(x))|`` for ``x`` (same shape as ``x``)."""
    if codec.name == "none":
        return torch.zeros_like(x)
    if codec.name == "fp16":
        return torch.maximum(x.abs() * 2.0 ** -11, torch.full_like(x, 2.0 ** -25))
    if codec.name == "int8":
        return (Int8Codec.scales(x).to(torch.float32) / 2).expand_as(x)
    raise ValueError(f"no error bound known for codec {codec.name!r}")
