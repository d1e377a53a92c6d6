"""The one-pass multipart split (`service.uploads.plain_parts`) agrees with the full parser
on every body a real client builds, and hands anything unusual to it."""

from __future__ import annotations

import asyncio

import httpx2
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartParser

from service.uploads import plain_parts

names = st.sampled_from(["image", "images", "label", "request_id", "x", "ü"])
contents = st.binary(max_size=300)
files = st.lists(st.tuples(names, contents), max_size=5)
fields = st.lists(st.tuples(names, st.text(max_size=20)), max_size=3)


def encoded(file_parts: list[tuple[str, bytes]], text_parts: list[tuple[str, str]]):
    """The body and content type httpx (a real client) sends for these parts."""
    request = httpx2.Request(
        "POST",
        "http://test/predict",
        files=[(name, ("photo.jpg", data, "image/jpeg")) for name, data in file_parts],
        data=dict(text_parts) if text_parts else None,
    )
    return request.read(), request.headers["content-type"]


def full_parser(body: bytes, content_type: str) -> list[tuple[str, bytes | str]]:
    async def parse():
        async def stream():
            yield body

        headers = Headers({"content-type": content_type})
        form = await MultiPartParser(headers, stream(), max_files=100, max_fields=100).parse()
        return [
            (name, await value.read() if isinstance(value, UploadFile) else value)
            for name, value in form.multi_items()
        ]

    return asyncio.run(parse())


@settings(max_examples=150, deadline=None)
@given(files, fields)
def test_the_split_agrees_with_the_full_parser(file_parts, text_parts) -> None:
    assume(file_parts)  # without a file, a client sends a urlencoded form
    body, content_type = encoded(file_parts, text_parts)
    parts = plain_parts(body, content_type)
    assert parts is not None  # a real client's body is plain
    assert parts == full_parser(body, content_type)


def test_anything_unusual_goes_to_the_full_parser() -> None:
    body, content_type = encoded([("image", b"\xff\xd8 jpeg bytes")], [])
    boundary = content_type.split("boundary=")[1].encode()
    assert plain_parts(body, content_type) == [("image", b"\xff\xd8 jpeg bytes")]
    unusual = {
        "a preamble": b"preamble\r\n" + body,
        "no closing delimiter": body[: body.rindex(b"--" + boundary)],
        "another header": body.replace(
            b"Content-Type: image/jpeg", b"Content-Transfer-Encoding: base64"
        ),
        "an escaped name": body.replace(b'name="image"', b'name="im\\"age"'),
        "an RFC 5987 file name": body.replace(b'filename="photo.jpg"', b"filename*=UTF-8''p.jpg"),
        "text after the end": body + b"epilogue",
    }
    for why, odd in unusual.items():
        assert plain_parts(odd, content_type) is None, why
    assert plain_parts(body, "multipart/form-data") is None  # no boundary
