"""The raw event record every parser path decodes into.

Fields are typed `Any` on purpose: a field of an unexpected type must not make the whole
file unreadable. The table builder checks and converts each value, and `args` stays
undecoded JSON until an event of a category the analysis uses needs it.
"""

from __future__ import annotations

from typing import Any

import msgspec


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


EVENT_DECODER = msgspec.json.Decoder(RawEvent)
EVENT_LIST_DECODER = msgspec.json.Decoder(list[RawEvent])
TOP_LEVEL_DECODER = msgspec.json.Decoder(dict[str, msgspec.Raw])
ANY_DECODER = msgspec.json.Decoder()
