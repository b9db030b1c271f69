"""The event-stream decoder gives the same events however the body is cut.

A body arrives in arbitrary pieces; single-line `data:` events are cut out
whole, anything else (several lines, `event:` names, comments, CRLF line ends)
goes line by line. Either way the events are those of the whole body, parsed
by the rules of server-sent events (the reference below).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from langchain_holysheep._sse import _Decoder

BODIES = [
    b'data: {"a": 1}\n\ndata: {"b": 2}\n\ndata: [DONE]\n\n',
    b'data: {"a": 1}\r\n\r\ndata: [DONE]\r\n\r\n',
    b": keep-alive\n\nevent: note\ndata: x\ndata: y\n\n\n\ndata:z\n\n",
    b"data: a\n\n\ndata: b\n\nid: 3\ndata: c\nretry: 10\n\ndata: tail",
    b"data:\n\ndata:  two spaces\n\n",
    b'data: {"text": "data: not an event"}\n\ndata: {"b": 2}\n\ndata: [DONE]\n\n',
    b"data: a\n\ndata:b\n\ndata: c\n\n",
    b"data: a\n\n: ping\n\ndata: b\n\n\n\n\ndata: c\n\n",
    b"data: a\ndata: b\n\ndata: c\n\nevent: e\ndata: d\n\n",
]


def _reference(body: bytes) -> list[tuple[bytes, str | None]]:
    """Events of a whole body: lines end in LF or CRLF, a blank line ends one."""
    events: list[tuple[bytes, str | None]] = []
    data: list[bytes] = []
    name: str | None = None
    for line in (body + b"\n\n").replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            if data:
                events.append((b"\n".join(data), name))
            data, name = [], None
        elif line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value[:1] == b" " else value)
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
    return events


@given(
    body=st.sampled_from(BODIES),
    cuts=st.lists(st.integers(min_value=1, max_value=80), max_size=10),
)
def test_any_cut_of_a_body_gives_its_events(body: bytes, cuts: list[int]) -> None:
    decoder = _Decoder()
    events = []
    start = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(body[start:cut])
        start = max(start, cut)
    events += decoder.feed(body[start:])
    events += decoder.end()
    assert [(e.data, e.event) for e in events] == _reference(body)
