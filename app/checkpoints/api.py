"""/api/v1/checkpoints: upload, list, read, change access, download files."""

from __future__ import annotations

import anyio
import litestar
from litestar import Controller, Request, Response
from litestar.response import File
from pydantic import BaseModel, ConfigDict, ValidationError

from app.auth.principal import Principal
from app.checkpoints import service
from app.checkpoints.schemas import AccessLevel, CheckpointCreate, CheckpointRead
from app.checkpoints.upload_form import read_upload
from app.db import session_scope
from app.errors import Invalid, TooLarge
from app.http import PUBLIC, get, patch
from app.ids import Id
from app.pagination import Page, PageRequest

# Multipart framing on top of the files themselves.
FORM_OVERHEAD = 1024 * 1024


class AccessChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    access_level: AccessLevel


def _form_fields(fields: dict) -> CheckpointCreate:
    try:
        return CheckpointCreate.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise Invalid(f"{field}: {err['msg']}", field=field) from None


def _check_allowed(principal: Principal, data: CheckpointCreate) -> None:
    with session_scope(write=False) as session:
        service.check_upload_allowed(session, principal, data)


def _upload(principal: Principal, data: CheckpointCreate, files: list) -> CheckpointRead:
    with session_scope() as session:
        ckpt = service.upload_checkpoint(session, principal, data, files)
        return service.read_checkpoint(session, ckpt)


class CheckpointController(Controller):
    path = "/api/v1/checkpoints"
    tags = ["checkpoints"]

    # Async so the size check can refuse on Content-Length before reading the body; the
    # registry enforces its own limits while streaming, so Litestar's default is off.
    @litestar.post("/", request_max_body_size=None, status_code=201)
    async def upload_checkpoint(self, request: Request,
                                principal: Principal) -> Response[CheckpointRead]:
        """multipart/form-data: fields model, name, access_level; parts `files`."""
        per_file, total = service.upload_limits()
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > total + FORM_OVERHEAD:
            raise TooLarge(f"the upload is larger than the limit of {total} bytes",
                           field="files", limit=total)
        authorised: list[CheckpointCreate] = []

        async def authorise(fields: dict) -> None:
            data = _form_fields(fields)
            await anyio.to_thread.run_sync(_check_allowed, principal, data)
            authorised.append(data)

        # Authorised (may this caller upload to that model?) before any file is kept.
        _, files = await read_upload(request.stream(), request.headers.get("content-type", ""),
                                     authorise=authorise, per_file=per_file, total=total,
                                     overhead=FORM_OVERHEAD)
        try:
            read = await anyio.to_thread.run_sync(_upload, principal, authorised[0], files)
        finally:
            for _, spool in files:
                spool.close()
        return Response(read, status_code=201)

    @get("/", opt=PUBLIC)
    def list_checkpoints(self, principal: Principal, page: PageRequest,
                         model: str | None = None) -> Page[CheckpointRead]:
        with session_scope(write=False) as session:
            rows, cursor = service.list_checkpoints(session, principal, page, model=model)
            return Page(items=[service.read_checkpoint(session, c) for c in rows],
                        next_cursor=cursor)

    @get("/{checkpoint_id:int}", opt=PUBLIC)
    def get_checkpoint(self, checkpoint_id: Id, principal: Principal) -> CheckpointRead:
        with session_scope(write=False) as session:
            return service.read_checkpoint(
                session, service.get_checkpoint(session, principal, checkpoint_id))

    @patch("/{checkpoint_id:int}")
    def change_access(self, checkpoint_id: Id, data: AccessChange,
                      principal: Principal) -> CheckpointRead:
        with session_scope() as session:
            ckpt = service.set_access_level(session, principal, checkpoint_id,
                                            data.access_level)
            return service.read_checkpoint(session, ckpt)

    @get("/{checkpoint_id:int}/files/{name:str}", opt=PUBLIC)
    def download_file(self, checkpoint_id: Id, name: str, principal: Principal) -> File:
        with session_scope(write=False) as session:
            path, entry = service.open_file(session, principal, checkpoint_id, name)
        return File(path=path, filename=name, media_type="application/octet-stream",
                    headers={"ETag": f'"{entry["sha256"]}"',
                             "X-Content-SHA256": entry["sha256"]})
