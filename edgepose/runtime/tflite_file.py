"""Read what a ``.tflite`` file says about itself, without an interpreter.

A TFLite model is a FlatBuffer (schema ``tflite::Model``, file identifier
``TFL3``). This module reads just enough of it, by hand, to

- tell a truncated or non-TFLite file apart from a model the runtime cannot run;
- find ``min_runtime_version`` (written by the converter) and the names of the
  model's metadata entries (``TFLITE_METADATA`` when the TFLite Metadata writer
  was used);
- list the associated files (e.g. ``labels.txt``) that the Metadata writer
  appends to the flatbuffer as a zip archive.

FlatBuffer layout used here: a table starts with an ``int32`` offset back to
its vtable; the vtable holds ``uint16`` offsets of each field within the
table (0 = absent). Vectors and strings are reached through a ``uint32``
offset relative to where it is stored and start with a ``uint32`` length.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.errors import ModelError

IDENTIFIER = b"TFL3"
# Field numbers of tflite::Model, tflite::Metadata and tflite::Buffer in schema.fbs.
_MODEL_DESCRIPTION, _MODEL_BUFFERS, _MODEL_METADATA = 3, 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2


@dataclass
class ModelFileInfo:
    """Facts read from a ``.tflite`` file."""

    path: Path
    size_bytes: int
    description: str  # e.g. "MLIR Converted."
    min_runtime_version: str | None
    converter_version: str | None  # TensorFlow version from CONVERSION_METADATA, if any
    metadata_names: list[str] = field(default_factory=list)
    associated_files: list[str] = field(default_factory=list)  # zip appended by Metadata writer
    tflite_metadata: bytes | None = None  # the TFLITE_METADATA flatbuffer (schema M001), if any


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data = data
        self.path = path

    def _need(self, pos: int, size: int) -> None:
        if pos < 0 or pos + size > len(self.data):
            raise ModelError(f"truncated or corrupt .tflite file ({len(self.data)} bytes, "
                             f"the model refers to byte {pos + size})", self.path)

    def u8s(self, pos: int, n: int) -> bytes:
        self._need(pos, n)
        return self.data[pos:pos + n]

    def unpack(self, fmt: str, pos: int):
        self._need(pos, struct.calcsize(fmt))
        return struct.unpack_from(fmt, self.data, pos)[0]

    def field_pos(self, table: int, index: int) -> int | None:
        vtable = table - self.unpack("<i", table)
        vt_size = self.unpack("<H", vtable)
        slot = 4 + 2 * index
        if slot >= vt_size:
            return None
        offset = self.unpack("<H", vtable + slot)
        return table + offset if offset else None

    def indirect(self, pos: int) -> int:
        return pos + self.unpack("<I", pos)

    def vector(self, table: int, index: int) -> tuple[int, int] | None:
        """(start of elements, length) of a vector field, or None if absent."""
        pos = self.field_pos(table, index)
        if pos is None:
            return None
        start = self.indirect(pos)
        return start + 4, self.unpack("<I", start)

    def tables(self, table: int, index: int) -> list[int]:
        vec = self.vector(table, index)
        if vec is None:
            return []
        start, length = vec
        self._need(start, 4 * length)
        return [self.indirect(start + 4 * i) for i in range(length)]

    def string(self, table: int, index: int) -> str | None:
        vec = self.vector(table, index)
        if vec is None:
            return None
        return self.u8s(*vec).decode("utf-8", "replace")

    def scalar(self, table: int, index: int, fmt: str, default=0):
        pos = self.field_pos(table, index)
        return default if pos is None else self.unpack(fmt, pos)


def read_model_info(path: str | Path) -> ModelFileInfo:
    """Validate ``path`` as a TFLite flatbuffer and read its metadata.

    Raises :class:`ModelError` for a missing, empty, non-TFLite or truncated file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError("model file not found", path) from None
    except IsADirectoryError:
        raise ModelError("is a directory, not a .tflite file", path) from None
    if not data:
        raise ModelError("empty file, not a .tflite model", path)
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise ModelError("not a TFLite model (no 'TFL3' flatbuffer identifier)", path)
    reader = _Reader(data, path)
    model = reader.indirect(0)

    buffers = reader.tables(model, _MODEL_BUFFERS)
    for buffer in buffers:  # every weight must lie inside the file: catches truncation
        vec = reader.vector(buffer, _BUFFER_DATA)
        if vec is not None:
            reader._need(vec[0], vec[1])
        offset = reader.scalar(buffer, _BUFFER_OFFSET, "<Q")
        if offset > 1:
            reader._need(offset, reader.scalar(buffer, _BUFFER_SIZE, "<Q"))

    names: list[str] = []
    min_version = converter = None
    tflite_metadata: bytes | None = None
    for entry in reader.tables(model, _MODEL_METADATA):
        name = reader.string(entry, _METADATA_NAME) or ""
        names.append(name)
        index = reader.scalar(entry, _METADATA_BUFFER, "<I")
        if name == "min_runtime_version" and index < len(buffers):
            vec = reader.vector(buffers[index], _BUFFER_DATA)
            if vec is not None:
                min_version = reader.u8s(*vec).split(b"\0")[0].decode("ascii", "replace")
        if name == "TFLITE_METADATA" and index < len(buffers):
            vec = reader.vector(buffers[index], _BUFFER_DATA)
            if vec is not None:
                tflite_metadata = reader.u8s(*vec)
        if name == "CONVERSION_METADATA" and index < len(buffers):
            vec = reader.vector(buffers[index], _BUFFER_DATA)
            if vec is not None:
                converter = _converter_version(reader.u8s(*vec), path)

    return ModelFileInfo(path=path, size_bytes=len(data),
                         description=reader.string(model, _MODEL_DESCRIPTION) or "",
                         min_runtime_version=min_version or None, converter_version=converter,
                         metadata_names=names,
                         associated_files=_zip_members(data), tflite_metadata=tflite_metadata)


def _converter_version(blob: bytes, path: Path) -> str | None:
    # tflite::ConversionMetadata { environment: Environment { tensorflow_version: string } }
    try:
        reader = _Reader(blob, path)
        root = reader.indirect(0)
        env_pos = reader.field_pos(root, 0)
        return None if env_pos is None else reader.string(reader.indirect(env_pos), 0)
    except (ModelError, struct.error):
        return None


def _zip_members(data: bytes) -> list[str]:
    # The Metadata writer appends a zip of associated files after the flatbuffer;
    # zipfile finds its central directory from the end, whatever precedes it.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return []


def read_associated_file(path: str | Path, name: str) -> bytes:
    """The bytes of one associated file packed into the model.

    Raises:
        ModelError: the model has no associated file ``name``.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read(name)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"no associated file {name!r} in the model ({exc})", path) from None


def embedded_labels(path: str | Path, info: ModelFileInfo | None = None) -> list[str]:
    """Labels from a ``labels.txt``-style file packed into the model, or ``[]``.

    Prefers a member named like ``*label*.txt``, else the only ``.txt`` member.
    """
    info = info or read_model_info(path)
    texts = [n for n in info.associated_files if n.lower().endswith(".txt")]
    named = [n for n in texts if "label" in Path(n).name.lower()]
    chosen = named[0] if named else (texts[0] if len(texts) == 1 else None)
    if chosen is None:
        return []
    text = read_associated_file(path, chosen).decode("utf-8", "replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class InputMetadata:
    """What TFLite Metadata says about the first input tensor (absent parts are None)."""

    mean: tuple[float, ...] | None  # NormalizationOptions: input = (pixel - mean) / std
    std: tuple[float, ...] | None
    color_space: str | None  # "RGB", "GRAYSCALE" or None (UNKNOWN / not an image)
    size: tuple[int, int] | None  # ImageProperties.default_size as (height, width)


# Field numbers in tensorflow/lite/experimental/support/metadata/metadata_schema.fbs.
_MM_SUBGRAPHS = 3
_SG_INPUTS = 2
_TM_CONTENT, _TM_PROCESS_UNITS = 3, 4
_PU_TYPE, _PU_OPTIONS = 0, 1
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union member 1
_CONTENT_TYPE, _CONTENT_PROPERTIES = 0, 1
_IMAGE_PROPERTIES = 2  # ContentProperties union member 2
_COLOR_SPACES = {1: "RGB", 2: "GRAYSCALE"}


def input_metadata(info: ModelFileInfo) -> InputMetadata | None:
    """Normalisation, colour space and size of the first input from TFLite Metadata.

    None when the model carries no TFLITE_METADATA or it describes no input; a
    malformed metadata flatbuffer raises :class:`ModelError`.

    Raises:
        ModelError: a malformed TFLITE_METADATA flatbuffer.
    """
    if not info.tflite_metadata:
        return None
    reader = _Reader(info.tflite_metadata, info.path)
    try:
        root = reader.indirect(0)
        subgraphs = reader.tables(root, _MM_SUBGRAPHS)
        inputs = reader.tables(subgraphs[0], _SG_INPUTS) if subgraphs else []
        if not inputs:
            return None
        tensor = inputs[0]
        mean = std = None
        for unit in reader.tables(tensor, _TM_PROCESS_UNITS):
            if reader.scalar(unit, _PU_TYPE, "<B") == _NORMALIZATION_OPTIONS:
                pos = reader.field_pos(unit, _PU_OPTIONS)
                if pos is not None:
                    options = reader.indirect(pos)
                    mean, std = _floats(reader, options, 0), _floats(reader, options, 1)
        color = size = None
        pos = reader.field_pos(tensor, _TM_CONTENT)
        if pos is not None:
            content = reader.indirect(pos)
            props = reader.field_pos(content, _CONTENT_PROPERTIES)
            if reader.scalar(content, _CONTENT_TYPE, "<B") == _IMAGE_PROPERTIES and props:
                image = reader.indirect(props)
                color = _COLOR_SPACES.get(reader.scalar(image, 0, "<b"))
                size_pos = reader.field_pos(image, 1)
                if size_pos is not None:
                    table = reader.indirect(size_pos)
                    width, height = reader.scalar(table, 0, "<I"), reader.scalar(table, 1, "<I")
                    size = (int(height), int(width)) if width and height else None
    except struct.error:
        raise ModelError("malformed TFLite metadata (TFLITE_METADATA)", info.path) from None
    return InputMetadata(mean, std, color, size)


def _floats(reader: _Reader, table: int, index: int) -> tuple[float, ...] | None:
    vec = reader.vector(table, index)
    if vec is None:
        return None
    start, length = vec
    return tuple(float(v) for v in struct.unpack_from(f"<{length}f", reader.u8s(start, 4 * length)))
