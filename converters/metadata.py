"""Pack labels and the input contract into a ``.tflite`` as TFLite Metadata.

MediaPipe Tasks, TFLite Support and the picamera2 examples read a model's
labels and input normalisation from its TFLite Metadata, not from edgepose's
manifest (which stays). What the metadata writer of TFLite Support does, done
with the two packages edgepose already depends on (``flatbuffers``, and
``ai_edge_litert``'s generated ``tflite::Model`` schema) because
``tflite-support`` stopped at 0.4.4 (2023) and does not install beside TF 2.21:

1. a ``ModelMetadata`` flatbuffer (file identifier ``M001``, schema
   ``tensorflow_lite_support/metadata/metadata_schema.fbs``): the input's
   ``ImageProperties`` (RGB, or GRAYSCALE for a 1-channel input; default size) and
   ``NormalizationOptions`` (mean/std: one value per channel), ``Stats`` (min/max),
   and on the output a ``labels.txt`` associated file of type ``TENSOR_AXIS_LABELS``;
2. stored in a new model buffer named by a ``TFLITE_METADATA`` metadata entry;
3. ``labels.txt`` in a zip archive appended after the flatbuffer.

The runtime reads all three back (:mod:`edgepose.runtime.tflite_file`).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import numpy as np

from edgepose.runtime.input_contract import FEATURES, InputContract

LABELS_FILE = "labels.txt"
MIN_PARSER_VERSION = "1.0.0"  # the schema version of every field written here
# Union type tags and enums of metadata_schema.fbs.
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2
_NORMALIZATION_OPTIONS = 1
# ColorSpaceType of metadata_schema.fbs: UNKNOWN = 0, RGB = 1, GRAYSCALE = 2.
_RGB, _GRAYSCALE = 1, 2
_TENSOR_AXIS_LABELS = 2


def _strings(builder, *texts: str) -> list[int]:
    return [builder.CreateString(t) for t in texts]


def _float_vector(builder, values: Sequence[float]) -> int:
    return builder.CreateNumpyVector(np.asarray(values, dtype=np.float32))


def _table_vector(builder, offsets: Sequence[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _table(builder, fields: Sequence[tuple[str, int, object]]) -> int:
    """A table from ``(kind, slot, value)``: kind "offset", "uint8", "uint32"."""
    builder.StartObject(max(slot for _, slot, _ in fields) + 1)
    for kind, slot, value in fields:
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "uint8":
            builder.PrependUint8Slot(slot, value, 0)
        elif kind == "uint32":
            builder.PrependUint32Slot(slot, value, 0)
    return builder.EndObject()


def metadata_flatbuffer(name: str, labels: Sequence[str], contract: InputContract,
                        image_size: tuple[int, int] | None) -> bytes:
    """The ``ModelMetadata`` flatbuffer for a one-input classifier (see module docstring).

    An image input gets ImageProperties (RGB, or GRAYSCALE with one mean/std for a
    1-channel ``contract``; ``image_size`` as (height, width)), NormalizationOptions
    and Stats from ``contract``; a BGR contract, which the
    schema cannot express (colour spaces are RGB or GRAYSCALE), gets none of them so
    no reader feeds RGB where BGR is due: the manifest states it.
    """
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    model_name, description, input_name, output_name, labels_name, labels_about, version = \
        _strings(builder, name, "Image or keypoint classifier converted by edgepose.",
                 "input", "probabilities", LABELS_FILE, "Class labels, one per line.",
                 MIN_PARSER_VERSION)
    del labels  # the labels themselves travel in the appended zip
    labels_file = _table(builder, [("offset", 0, labels_name), ("offset", 1, labels_about),
                                   ("uint8", 2, _TENSOR_AXIS_LABELS)])
    output_files = _table_vector(builder, [labels_file])
    feature = _empty(builder)
    output_content = _table(builder, [("uint8", 0, _FEATURE_PROPERTIES),
                                      ("offset", 1, feature)])
    output = _table(builder, [("offset", 0, output_name), ("offset", 3, output_content),
                              ("offset", 6, output_files)])

    input_fields: list[tuple[str, int, object]] = [("offset", 0, input_name)]
    if contract.kind != FEATURES and contract.channel_order == "RGB":
        # NormalizationOptions holds one value per channel (the schema: "the number of
        # values must match the channels", or one for all): a grey input has one.
        mean, std = contract.channel_mean_std(contract.channels)
        lo, hi = contract.value_range or (0.0, 255.0)
        mean_vec, std_vec = _float_vector(builder, mean), _float_vector(builder, std)
        normalization = _table(builder, [("offset", 0, mean_vec), ("offset", 1, std_vec)])
        unit = _table(builder, [("uint8", 0, _NORMALIZATION_OPTIONS),
                                ("offset", 1, normalization)])
        units = _table_vector(builder, [unit])
        max_vec, min_vec = _float_vector(builder, [hi]), _float_vector(builder, [lo])
        stats = _table(builder, [("offset", 0, max_vec), ("offset", 1, min_vec)])
        colour = _GRAYSCALE if contract.channels == 1 else _RGB
        size_fields: list[tuple[str, int, object]] = [("uint8", 0, colour)]
        if image_size is not None:
            size = _table(builder, [("uint32", 0, image_size[1]), ("uint32", 1, image_size[0])])
            size_fields.append(("offset", 1, size))
        image = _table(builder, size_fields)
        content = _table(builder, [("uint8", 0, _IMAGE_PROPERTIES), ("offset", 1, image)])
        input_fields += [("offset", 3, content), ("offset", 4, units), ("offset", 5, stats)]
    else:
        content = _table(builder, [("uint8", 0, _FEATURE_PROPERTIES),
                                   ("offset", 1, _empty(builder))])
        input_fields.append(("offset", 3, content))
    tensor_in = _table(builder, input_fields)
    inputs, outputs = _table_vector(builder, [tensor_in]), _table_vector(builder, [output])
    subgraph = _table(builder, [("offset", 2, inputs), ("offset", 3, outputs)])
    subgraphs = _table_vector(builder, [subgraph])
    root = _table(builder, [("offset", 0, model_name), ("offset", 1, description),
                            ("offset", 3, subgraphs), ("offset", 7, version)])
    builder.Finish(root, file_identifier=b"M001")
    return bytes(builder.Output())


def _empty(builder) -> int:
    builder.StartObject(0)
    return builder.EndObject()


def add_metadata(model: bytes, name: str, labels: Sequence[str], contract: InputContract,
                 image_size: tuple[int, int] | None) -> bytes:
    """``model`` (a .tflite flatbuffer) with TFLITE_METADATA and ``labels.txt`` packed in.

    An existing TFLITE_METADATA entry is replaced; everything else (weights,
    signatures, CONVERSION_METADATA, min_runtime_version) is kept as it was.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    blob = metadata_flatbuffer(name, labels, contract, image_size)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(blob, dtype=np.uint8)
    tree.buffers = list(tree.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(tree.buffers) - 1
    kept = [m for m in (tree.metadata or []) if _name(m) != "TFLITE_METADATA"]
    tree.metadata = kept + [entry]
    builder = flatbuffers.Builder(len(model) + len(blob) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(LABELS_FILE, "\n".join(labels) + "\n")
    return bytes(builder.Output()) + packed.getvalue()


def _name(entry) -> str:
    name = entry.name
    return name.decode() if isinstance(name, bytes) else str(name)
