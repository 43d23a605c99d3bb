"""The event records every parser path decodes into.

`RawEvent` fields are typed `Any` on purpose: a field of an unexpected type must not make
the whole file unreadable. The table builder checks and converts each value, and `args`
stays undecoded JSON until an event of a category the analysis uses needs it. Then only
the keys in `KnownArgs` are read.

`TypedEvent` is the fast path for well-formed traces: it declares the type Kineto writes
for each field, so msgspec checks and converts every value while decoding. A batch with
one value of another type fails to decode as a whole, and is then read through
`RawEvent` instead.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class RawEvent(msgspec.Struct, omit_defaults=True):
    """One Chrome-trace event as written in the file."""

    ph: Any = None
    cat: Any = None
    name: Any = None
    ts: Any = None
    dur: Any = None
    pid: Any = None
    tid: Any = None
    args: msgspec.Raw = msgspec.Raw()


class KnownArgs(msgspec.Struct, gc=False):
    """The `args` keys the tables read, each of any JSON type. Other keys are skipped.

    The two spellings of the external id default to UNSET, which distinguishes a key
    present with a null value from a missing key.
    """

    external_id: Any = msgspec.field(default=UNSET, name="External id")
    device: Any = None
    stream: Any = None
    correlation: Any = None
    registers_per_thread: Any = msgspec.field(default=None, name="registers per thread")
    shared_memory: Any = msgspec.field(default=None, name="shared memory")
    grid: Any = None
    block: Any = None
    bytes: Any = None
    input_dims: Any = msgspec.field(default=None, name="Input Dims")
    input_types: Any = msgspec.field(default=None, name="Input type")
    external_id_lowercase: Any = msgspec.field(default=UNSET, name="external id")


class TypedArgs(msgspec.Struct, gc=False):
    """The `args` keys the tables read, with the types Kineto writes.

    Input shapes and types stay undecoded JSON, because the same few values repeat on
    every step and are decoded once per distinct text.
    """

    external_id: int | None | UnsetType = msgspec.field(default=UNSET, name="External id")
    device: int | None = None
    stream: int | None = None
    correlation: int | None = None
    registers_per_thread: int | None = msgspec.field(default=None, name="registers per thread")
    shared_memory: int | None = msgspec.field(default=None, name="shared memory")
    grid: tuple[int, int, int] | None = None
    block: tuple[int, int, int] | None = None
    bytes: int | None = None
    input_dims: msgspec.Raw = msgspec.field(default=msgspec.Raw(), name="Input Dims")
    input_types: msgspec.Raw = msgspec.field(default=msgspec.Raw(), name="Input type")
    external_id_lowercase: int | None | UnsetType = msgspec.field(
        default=UNSET, name="external id"
    )


class TypedEvent(msgspec.Struct, gc=False):
    """One Chrome-trace event whose fields have the types Kineto writes."""

    ph: str | None = None
    cat: str | None = None
    name: str | None = None
    ts: float | None = None
    dur: float | None = None
    pid: int | str | None = None
    tid: int | str | None = None
    args: TypedArgs | None = None


EVENT_DECODER = msgspec.json.Decoder(RawEvent)
EVENT_LIST_DECODER = msgspec.json.Decoder(list[RawEvent])
TYPED_EVENT_LIST_DECODER = msgspec.json.Decoder(list[TypedEvent])
KNOWN_ARGS_DECODER = msgspec.json.Decoder(KnownArgs)
TOP_LEVEL_DECODER = msgspec.json.Decoder(dict[str, msgspec.Raw])
ANY_DECODER = msgspec.json.Decoder()
