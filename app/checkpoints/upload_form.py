"""Reading a multipart checkpoint upload as a stream: authorise first, then spool, bounded.

Litestar's `request.form()` reads and spools the whole body before the handler runs, so
anyone signed in could make the server write gigabytes for a model they may not upload
to. Here the text fields (model, name, access_level) are read first; the caller is
authorised when the first file part begins, before a byte of it is kept, and every
part is counted against the per-file and total limits while it streams.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO

from multipart import MultipartError, MultipartSegment, PushMultipartParser

from app.errors import Invalid, TooLarge

MAX_TEXT_FIELD = 4096
MAX_PARTS = 1000
SPOOL_IN_MEMORY = 1024 * 1024


def boundary_of(content_type: str) -> str:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise Invalid("send the checkpoint as multipart/form-data", field="body")
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value.strip('"'):
            return value.strip('"')
    raise Invalid("multipart/form-data without a boundary", field="body")


async def read_upload(stream: AsyncIterator[bytes], content_type: str, *,
                      authorise: Callable[[dict], Awaitable[None]], per_file: int,
                      total: int, overhead: int) -> tuple[dict, list[tuple[str, BinaryIO]]]:
    """Text fields and spooled files. `authorise(fields)` runs before any file is kept
    (or at the end when no file was sent); it raises to refuse."""
    fields: dict[str, str] = {}
    files: list[tuple[str, BinaryIO]] = []
    authorised, received = False, 0
    segment: MultipartSegment | None = None
    text, spool, kept = bytearray(), None, 0
    try:
        with PushMultipartParser(boundary_of(content_type), max_segment_count=MAX_PARTS,
                                 strict=True) as parser:
            async for chunk in stream:
                received += len(chunk)
                if received > total + overhead:
                    raise TooLarge(f"the upload is larger than the limit of {total} bytes",
                                   field="files", limit=total)
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment, text, kept = event, bytearray(), 0
                        if segment.filename is not None:
                            if not authorised:
                                await authorise(fields)
                                authorised = True
                            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
                            files.append((segment.filename, spool))
                    elif event:
                        kept += len(event)
                        if spool is not None:
                            if kept > per_file:
                                name = segment.filename
                                raise TooLarge(f"files[{name}] is larger than the limit of "
                                               f"{per_file} bytes", field=f"files[{name}]",
                                               limit=per_file)
                            spool.write(event)
                        else:
                            if kept > MAX_TEXT_FIELD:
                                raise Invalid(f"at most {MAX_TEXT_FIELD} bytes",
                                              field=segment.name or "body")
                            text.extend(event)
                    else:
                        if spool is not None:
                            spool.seek(0)
                        elif segment is not None and segment.name:
                            try:
                                fields[segment.name] = text.decode("utf-8")
                            except UnicodeDecodeError:
                                raise Invalid("not UTF-8 text", field=segment.name) from None
                        segment, spool = None, None
                if parser.closed:
                    break
        if not authorised:
            await authorise(fields)
        return fields, files
    except MultipartError as exc:
        _close(files)
        raise Invalid(f"malformed multipart/form-data: {exc}", field="body") from None
    except BaseException:
        _close(files)
        raise


def _close(files: list[tuple[str, BinaryIO]]) -> None:
    for _, spool in files:
        spool.close()
