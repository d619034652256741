"""/api/v1/checkpoints: upload, list, read, change access, download files."""

from __future__ import annotations

from typing import Annotated

import anyio
import litestar
from litestar import Controller, Request, Response
from litestar.params import Parameter
from litestar.response import File, Redirect, Stream
from litestar.response.base import ASGIResponse
from litestar.response.file import ASGIFileResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from app import flows
from app.auth.principal import Principal
from app.checkpoints import service
from app.checkpoints.blobstore import content_disposition
from app.checkpoints.schemas import AccessLevel, CheckpointCreate, CheckpointRead, StageAttach
from app.checkpoints.upload_form import read_upload
from app.db import session_scope
from app.errors import Invalid, TooLarge, field_path, problem
from app.http import PUBLIC, delete, get, patch, put
from app.ids import Id
from app.pagination import Page, PageRequest

# Multipart framing on top of the files themselves.
FORM_OVERHEAD = 1024 * 1024

REDIRECT_WHY = ("with object storage: `false` streams the file through the registry instead "
                "of answering 302 with a presigned URL (for clients that cannot follow a "
                "redirect); no effect with the local folder")


class AccessChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    access_level: AccessLevel


def _form_fields(fields: dict) -> CheckpointCreate:
    try:
        return CheckpointCreate.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = field_path(err["loc"]) or "body"
        raise Invalid(f"{field}: {err['msg']}", field=field) from None


def _check_allowed(principal: Principal, data: CheckpointCreate) -> None:
    with session_scope(write=False) as session:
        service.check_upload_allowed(session, principal, data)


def _upload(principal: Principal, data: CheckpointCreate, files: list) -> CheckpointRead:
    with session_scope() as session:
        ckpt = flows.upload_checkpoint(session, principal, data, files)
        return service.read_checkpoint(session, ckpt, principal)


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
            return Page(items=[service.read_checkpoint(session, c, principal) for c in rows],
                        next_cursor=cursor)

    @get("/stage/{plan_id:int}/{position:int}", opt=PUBLIC)
    def stage_checkpoints(self, plan_id: Id, position: Annotated[int, Parameter(
            ge=1, le=1000)], principal: Principal) -> list[CheckpointRead]:
        """What a plan stage's checkpoint reference resolves to: the checkpoints attached
        to the stage and the one its checkpoint_ref names, those you may see."""
        with session_scope(write=False) as session:
            return [service.read_checkpoint(session, c, principal) for c in
                    service.stage_checkpoints(session, principal, plan_id, position)]

    @put("/{checkpoint_id:int}/stage")
    def attach_to_stage(self, checkpoint_id: Id, data: StageAttach,
                        principal: Principal) -> CheckpointRead:
        """Attach to a stage of a plan of the same model (lab member)."""
        with session_scope() as session:
            ckpt = service.attach_to_stage(session, principal, checkpoint_id, data.plan,
                                           data.stage)
            return service.read_checkpoint(session, ckpt, principal)

    @delete("/{checkpoint_id:int}/stage", status_code=200)
    def detach_from_stage(self, checkpoint_id: Id, principal: Principal) -> CheckpointRead:
        """Detach from its stage (lab member)."""
        with session_scope() as session:
            ckpt = service.attach_to_stage(session, principal, checkpoint_id, None, None)
            return service.read_checkpoint(session, ckpt, principal)

    @get("/{checkpoint_id:int}", opt=PUBLIC)
    def get_checkpoint(self, checkpoint_id: Id, principal: Principal) -> CheckpointRead:
        with session_scope(write=False) as session:
            return service.read_checkpoint(
                session, service.get_checkpoint(session, principal, checkpoint_id), principal)

    @patch("/{checkpoint_id:int}")
    def change_access(self, checkpoint_id: Id, data: AccessChange,
                      principal: Principal) -> CheckpointRead:
        with session_scope() as session:
            ckpt = service.set_access_level(session, principal, checkpoint_id,
                                            data.access_level)
            return service.read_checkpoint(session, ckpt, principal)

    # A download is long by design: outside the request budget (app/http.py). 403 says
    # why: a partner's grant on this checkpoint has ended, or the caller sees it but may
    # not download it; any other unseen checkpoint is the 404 of one that never existed.
    @get("/{checkpoint_id:int}/files/{name:str}",
         opt={**PUBLIC, "request_budget": False, "problems": (403,)})
    def download_file(self, checkpoint_id: Id, name: str, principal: Principal,
                      request: Request,
                      redirect: Annotated[bool, Parameter(description=REDIRECT_WHY)] = True,
                      ) -> Response:
        """The whole file, or one `Range: bytes=...` of it (206) to resume a download.
        With object storage, a 302 to a short-lived presigned URL of the bucket (which
        answers Range itself), unless `redirect=false`, the request carries `If-None-Match`
        or `If-Range`, or its `Accept` names no wildcard (e.g. only
        `application/octet-stream`): then the registry streams the file itself.
        403 when your lab's grant on it has ended, or you may see it but not download it
        (`detail` says why)."""
        with session_scope(write=False) as session:
            store, entry = service.open_file(session, principal, checkpoint_id, name)
        sha = entry["sha256"]
        if store.redirects and redirect and _follows_redirects(request):
            # Checked and logged here; the bucket only checks the URL's signature and age.
            return Redirect(store.presigned_url(sha, name), status_code=302,
                            headers={"X-Content-SHA256": sha,
                                     "Cache-Control": "private, no-store"})
        headers = _file_headers(entry)
        span = parse_range(request.headers.get("range"), entry["size"])
        if span == UNSATISFIABLE:
            body = problem(416, "Range not satisfiable", f"the file has {entry['size']} bytes",
                           errors=[{"field": "range", "reason": "outside the file"}],
                           instance=request.url.path)
            return Response(body, status_code=416, media_type="application/problem+json",
                            headers=headers | {"Content-Range": f"bytes */{entry['size']}"})
        path = store.local_path(sha)
        if span is None or not _if_range_ok(request, entry):
            if path is not None:
                return File(path=path, filename=name, media_type="application/octet-stream",
                            headers=headers)
            return Stream(store.read(sha), media_type="application/octet-stream",
                          headers=headers | {"Content-Length": str(entry["size"]),
                                             "Content-Disposition": content_disposition(name)})
        start, end = span
        return Stream(store.read(sha, start, end), status_code=206,
                      media_type="application/octet-stream",
                      headers=headers | {"Content-Range": f"bytes {start}-{end}/{entry['size']}",
                                         "Content-Length": str(end - start + 1)})

    @litestar.head("/{checkpoint_id:int}/files/{name:str}", opt=PUBLIC, sync_to_thread=True)
    def head_file(self, checkpoint_id: Id, name: str,
                  principal: Principal) -> ASGIFileResponse:
        """Size, digest and ETag of a file without its body (e.g. before a ranged GET);
        answered by the registry whatever the storage, never redirected."""
        with session_scope(write=False) as session:
            store, entry = service.open_file(session, principal, checkpoint_id, name)
        path = store.local_path(entry["sha256"])
        if path is None:
            # A HEAD ASGIResponse sets neither length nor type itself.
            return ASGIResponse(body=b"", is_head_response=True, headers=_file_headers(entry) | {
                "Content-Length": str(entry["size"]), "Content-Type": "application/octet-stream",
                "Content-Disposition": content_disposition(name)})
        return ASGIFileResponse(file_path=path, filename=name, is_head_response=True,
                                media_type="application/octet-stream",
                                headers=_file_headers(entry))


def _follows_redirects(request: Request) -> bool:
    """Whether to answer 302: the registry's validators (If-None-Match, If-Range: the file's
    SHA-256) mean nothing to the bucket, so those requests are answered here; and a client
    whose Accept names only concrete types (no `*/*` with q > 0) asks for the bytes in this
    answer. No Accept header, or curl's, httpx's, requests' and browsers' (all with
    `*/*`), may be redirected."""
    if request.headers.get("if-none-match") or request.headers.get("if-range"):
        return False
    accept = request.headers.get("accept")
    if not accept:
        return True
    for item in accept.split(","):
        kind, *params = [p.strip() for p in item.split(";")]
        if kind == "*/*":
            q = next((p.split("=", 1)[1] for p in params if p.lower().startswith("q=")), "1")
            try:
                return float(q) > 0
            except ValueError:
                return True
    return False


def _file_headers(entry: dict) -> dict:
    return {"ETag": f'"{entry["sha256"]}"', "X-Content-SHA256": entry["sha256"],
            "Accept-Ranges": "bytes"}


def _if_range_ok(request: Request, entry: dict) -> bool:
    """If-Range: serve the range only if the file is still the one the client has."""
    tag = request.headers.get("if-range")
    return tag is None or tag.strip() == f'"{entry["sha256"]}"'


UNSATISFIABLE = (-1, -1)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b`, `bytes=a-` or `bytes=-n` range as inclusive offsets; None means
    the whole file (no header, or several ranges); unsatisfiable ones are a 416."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()) or \
            (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:
        start, end = max(0, size - int(last)), size - 1
        if int(last) == 0:
            start = size
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None
    if start >= size or start > end:
        return UNSATISFIABLE
    return start, end
