"""/api/v1/worker: the protocol of remote evaluation workers (`stagegate worker --url`).

Only a worker token reaches these routes, and a worker token reaches nothing else
(app/http.py auth_guard). A worker claims a job under a lease, renews the lease with
heartbeats while it runs, downloads the files of the job's checkpoints, and reports the
result or the failure; once its lease has expired or the job was leased to another
worker, every write answers 409 and nothing it sends is recorded.
"""

from __future__ import annotations

from litestar import Controller, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import File, Redirect

from app.auth.principal import Principal
from app.db import session_scope
from app.evals import remote_jobs
from app.evals.schemas import Claim, ClaimRequest, FailureReport, Heartbeat, JobState, ResultUpload
from app.http import get, post
from app.ids import Id

WORKER = {"worker": True, "problems": (403,)}
# A suite's details (samples' scores, a bias table) stay well under this.
MAX_RESULT_BYTES = 8 * 1024 * 1024


class WorkerController(Controller):
    path = "/api/v1/worker"
    tags = ["remote workers"]

    @post("/claims", opt=WORKER, status_code=201,
          responses={204: ResponseSpec(data_container=None,
                                       description="no job is waiting; ask again later")})
    def claim_job(self, data: ClaimRequest, principal: Principal) -> Claim:
        """Lease the oldest waiting job (or one whose lease expired) to this worker until
        `lease_expires_at`. A job whose lease expired three times is failed instead of
        handed out again. The answer lists the files to download, with their SHA-256."""
        with session_scope() as session:
            claim = remote_jobs.claim_job(session, principal, data.worker, data.lease_s)
        if claim is None:
            return Response(content=None, status_code=204)
        return Claim.model_validate(claim)

    @post("/jobs/{run_id:int}/heartbeat", opt=WORKER, status_code=200)
    def renew_lease(self, run_id: Id, data: Heartbeat, principal: Principal) -> JobState:
        """Renew the lease for as long as it was claimed for and record progress; 409
        once the lease is lost (stop working on the job)."""
        with session_scope() as session:
            return JobState.model_validate(
                remote_jobs.renew_lease(session, principal, run_id, data))

    @get("/jobs/{run_id:int}/files/{checkpoint_id:int}/{name:str}",
         opt={**WORKER, "request_budget": False})
    def download_job_file(self, run_id: Id, checkpoint_id: Id, name: str,
                          principal: Principal) -> File | Redirect:
        """A file of a checkpoint the job measures, while this worker holds the job's
        lease (403 otherwise): the bytes, or with object storage a 302 to a short-lived
        presigned URL. Check its SHA-256 against the claim's."""
        with session_scope(write=False) as session:
            store, entry = remote_jobs.job_file(session, principal, run_id, checkpoint_id,
                                                name)
        if store.redirects:
            return Redirect(store.presigned_url(entry["sha256"], name), status_code=302)
        return File(path=store.local_path(entry["sha256"]), filename=name,
                    media_type="application/octet-stream",
                    headers={"ETag": f'"{entry["sha256"]}"',
                             "X-Content-SHA256": entry["sha256"]})

    @post("/jobs/{run_id:int}/results", opt={**WORKER, "problems": (403, 409)},
          status_code=200, request_max_body_size=MAX_RESULT_BYTES)
    def upload_result(self, run_id: Id, data: ResultUpload,
                      principal: Principal) -> JobState:
        """Record the job's result with its provenance; the job succeeds. 409 (nothing
        recorded) when this worker's lease expired or the job went to another worker."""
        with session_scope() as session:
            return JobState.model_validate(
                remote_jobs.accept_result(session, principal, run_id, data))

    @post("/jobs/{run_id:int}/failure", opt={**WORKER, "problems": (403, 409)},
          status_code=200)
    def report_failure(self, run_id: Id, data: FailureReport,
                       principal: Principal) -> JobState:
        """The job failed on the worker: it is marked failed with the error and the tail
        of the worker's log. 409 when the lease is no longer this worker's."""
        with session_scope() as session:
            return JobState.model_validate(
                remote_jobs.report_failure(session, principal, run_id, data))
