"""Parameters and multiply-adds of a TFLite model, read from its flatbuffer (no runtime, no schema package).

A ``.tflite`` file is a flatbuffer ``Model``: ``operator_codes`` (field 1), ``subgraphs`` (2) and
``buffers`` (4). A subgraph holds ``tensors`` (0: each with ``shape`` 0, ``buffer`` 2) and ``operators``
(3: each with ``opcode_index`` 0, ``inputs`` 1, ``outputs`` 2). A tensor is a constant (a weight) when
its buffer holds data. Counted here:

- **parameters**: the elements of every constant tensor of a floating-point or integer type, shared
  tensors once;
- **multiply-adds**: per convolution (``CONV_2D``: output elements × kernel height × width × input
  channels), depthwise convolution (output elements × kernel height × width), fully connected layer
  and batch matrix product (output elements × the inner dimension), at the tensor shapes stored in
  the file (the batch size it was saved with). Element-wise operations are not counted, as papers
  on keyword spotting count them.
"""

from __future__ import annotations

import struct
from pathlib import Path

CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL = 3, 4, 9, 126


class _Table:
    """A flatbuffer table at ``offset`` in ``data``: fields read through its vtable."""

    def __init__(self, data: bytes, offset: int) -> None:
        self.data, self.offset = data, offset
        (relative,) = struct.unpack_from("<i", data, offset)
        self.vtable = offset - relative
        self.vtable_size, _ = struct.unpack_from("<HH", data, self.vtable)

    def _field(self, index: int) -> int | None:
        entry = 4 + 2 * index
        if entry >= self.vtable_size:
            return None
        (relative,) = struct.unpack_from("<H", self.data, self.vtable + entry)
        return self.offset + relative if relative else None

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        position = self._field(index)
        return default if position is None else struct.unpack_from("<" + fmt, self.data, position)[0]

    def _vector(self, index: int) -> tuple[int, int] | None:
        position = self._field(index)
        if position is None:
            return None
        (relative,) = struct.unpack_from("<I", self.data, position)
        start = position + relative
        (length,) = struct.unpack_from("<I", self.data, start)
        return start + 4, length

    def ints(self, index: int) -> list[int]:
        found = self._vector(index)
        return [] if found is None else list(struct.unpack_from(f"<{found[1]}i", self.data, found[0]))

    def vector_length(self, index: int) -> int:
        found = self._vector(index)
        return 0 if found is None else found[1]

    def tables(self, index: int) -> list[_Table]:
        found = self._vector(index)
        if found is None:
            return []
        start, length = found
        out = []
        for item in range(length):
            position = start + 4 * item
            (relative,) = struct.unpack_from("<I", self.data, position)
            out.append(_Table(self.data, position + relative))
        return out


def _product(shape: list[int]) -> int:
    total = 1
    for size in shape:
        total *= max(int(size), 1)
    return total


def tflite_size(path: str | Path) -> dict:
    """``{"params", "macs", "input_shape"}`` of the TFLite model at ``path`` (see the module docstring)."""
    data = Path(path).read_bytes()
    (root,) = struct.unpack_from("<I", data, 0)
    model = _Table(data, root)
    codes = []
    for code in model.tables(1):
        deprecated = code.scalar(0, "b")
        builtin = code.scalar(3, "i")
        codes.append(max(deprecated, builtin))
    filled = [buffer.vector_length(0) > 0 for buffer in model.tables(4)]
    params = macs = 0
    counted: set[int] = set()
    input_shape: list[int] = []
    for number_of_subgraph, subgraph in enumerate(model.tables(2)):
        tensors = subgraph.tables(0)
        shapes = [tensor.ints(0) for tensor in tensors]
        if number_of_subgraph == 0 and subgraph.ints(1):
            input_shape = shapes[subgraph.ints(1)[0]]
        for number, tensor in enumerate(tensors):
            buffer = tensor.scalar(2, "I")
            if buffer < len(filled) and filled[buffer] and buffer not in counted:
                counted.add(buffer)
                params += _product(shapes[number])
        for operator in subgraph.tables(3):
            code = codes[operator.scalar(0, "I")] if codes else -1
            inputs, outputs = operator.ints(1), operator.ints(2)
            if len(inputs) < 2 or not outputs or min(inputs[:2]) < 0:
                continue
            output, weights = shapes[outputs[0]], shapes[inputs[1]]
            if code == CONV_2D and len(weights) == 4:
                macs += _product(output) * weights[1] * weights[2] * weights[3]
            elif code == DEPTHWISE_CONV_2D and len(weights) == 4:
                macs += _product(output) * weights[1] * weights[2]
            elif code == FULLY_CONNECTED and weights:
                macs += _product(output) * weights[-1]
            elif code == BATCH_MATMUL and weights:
                macs += _product(output) * shapes[inputs[0]][-1]
    return {"params": params, "macs": macs, "input_shape": input_shape}
