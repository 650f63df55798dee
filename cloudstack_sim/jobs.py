"""CloudStack's async jobs: submit now, finish ``job_duration`` seconds later, queried by id.

A handler of an async command validates synchronously (as ``BaseAsyncCmd``'s parameter checks do),
moves the object into its transitional state, then submits *work*: a callable that finishes the
operation and returns the job result body (``{"virtualmachine": {...}}`` or ``{"success": true}``).
Completion is scheduled with ``loop.call_later`` (no polling loop per job); ``job_duration=0``
completes before the submit response is sent. A failing job (an ``ApiError`` from the work, or an
injected fault) runs the handler's *rollback* and ends as ``ApiAsyncJobDispatcher.runJob`` ends it:
``jobstatus`` 2, ``jobresult`` ``{"errorcode", "errortext"}`` and ``jobresultcode`` equal to that
errorcode. The errorcode is the ``ApiErrorCode`` of a ``ServerApiException`` (what commands throw
for the failures they expect: ``DeployVMCmd`` turns ``InsufficientCapacityException`` into 533),
431 for an ``InvalidParameterValueException`` (the dispatcher converts it), and 530 for any other
exception (``PermissionDeniedException``, ``CloudRuntimeException``, ...), with its message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from .errors import CS_INVALID_PARAMETER, CS_SERVER_API, INTERNAL_ERROR_TEXT, ApiError
from .render import compact, cs_date, renderer
from .state import SimState, new_uuid

log = logging.getLogger(__name__)
PENDING, SUCCEEDED, FAILED = 0, 1, 2
RESTART_TEXT = "Job failed because the management server was restarted"


class JobQueue:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.callbacks: dict[str, tuple[Callable, Callable | None]] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        state.jobs = self

    def submit(self, call, *, instance_type: str | None, instance: dict | None,
               work: Callable[[], dict], rollback: Callable[[], None] | None = None) -> dict:
        job = self.state.add("job", {
            "id": new_uuid(), "account_id": call.account["id"], "user_id": call.user["id"],
            "cmd": call.spec.java_class, "command": call.spec.name, "status": PENDING,
            "instance_type": instance_type, "instance_id": instance["id"] if instance else None,
            "result": None, "completed": None})
        if instance is not None:
            instance["pending_job"] = job["id"]
            self.state.touch(instance)
        self.callbacks[job["id"]] = (work, rollback)
        duration = self.state.config.job_duration
        if duration <= 0:
            self.complete(job["id"])
        else:
            self.timers[job["id"]] = asyncio.get_running_loop().call_later(duration, self.complete, job["id"])
        return job

    def complete(self, job_id: str) -> None:
        self.timers.pop(job_id, None)
        work, rollback = self.callbacks.pop(job_id, (None, None))
        job = self.state.get("job", job_id)
        if job is None or work is None:
            return
        self._clear_pending(job)
        injected = self.state.faults.job_failure(job["command"])
        try:
            if injected is not None:   # injected failures are the command's ServerApiException
                raise ApiError(injected.job_error_code, injected.error_text, CS_SERVER_API)
            job["result"], job["status"] = work(), SUCCEEDED
        except ApiError as error:
            self._fail(job, rollback, error)
        except Exception:   # a bug in a handler must still end the job, as CloudStack's dispatcher does
            log.exception("async job %s (%s) crashed", job_id, job["command"])
            self._fail(job, rollback, ApiError(530, INTERNAL_ERROR_TEXT))
        job["completed"] = time.time()
        self.state.touch(job)

    def _fail(self, job: dict, rollback: Callable | None, error: ApiError) -> None:
        if rollback is not None:
            rollback()
        job["status"], job["result"] = FAILED, {"errorcode": job_error_code(error), "errortext": error.text}

    def _clear_pending(self, job: dict) -> None:
        kind = INSTANCE_KINDS.get(job["instance_type"] or "")
        instance = self.state.get(kind, job["instance_id"]) if kind else None
        if instance is not None and instance.get("pending_job") == job["id"]:
            del instance["pending_job"]
            self.state.touch(instance)

    def cancel_all(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()

    def finish_all_now(self) -> None:
        """Complete every pending job at once (used on shutdown so the saved state is settled)."""
        for job_id in list(self.timers):
            self.timers[job_id].cancel()
            self.complete(job_id)

    def abandon_loaded(self) -> None:
        """Jobs pending in a loaded state lost their work; CloudStack fails them on restart."""
        for job in self.state.store("job"):
            if job["status"] == PENDING:
                self._clear_pending(job)
                job["status"], job["completed"] = FAILED, time.time()
                job["result"] = {"errorcode": 530, "errortext": RESTART_TEXT}


INSTANCE_KINDS = {"VirtualMachine": "vm", "Volume": "volume", "Snapshot": "snapshot", "Template": "template",
                  "IpAddress": "public_ip", "Network": "network", "Vpc": "vpc", "SecurityGroup": "security_group"}


def job_error_code(error: ApiError) -> int:
    """The errorcode ``ApiAsyncJobDispatcher.runJob`` reports for an exception thrown in a job."""
    return error.code if error.cserrorcode in (CS_SERVER_API, CS_INVALID_PARAMETER) else 530


def pending_fields(record: dict) -> dict:
    """``jobid``/``jobstatus`` every BaseResponse carries while a job works on its object."""
    job_id = record.get("pending_job")
    return {"jobid": job_id, "jobstatus": PENDING} if job_id else {}


def submit_response(job: dict, create_id: str | None = None) -> dict:
    body = {"jobid": job["id"]}
    if create_id:
        body = {"id": create_id, "jobid": job["id"]}
    return body


def job_result_code(job: dict) -> int:
    """``completeAsyncJob(..., FAILED, errorCode, ...)``: a failed job's result code is its errorcode."""
    return (job["result"] or {}).get("errorcode", 530) if job["status"] == FAILED else 0


@renderer("job")
def render_job(state: SimState, job: dict) -> dict:
    account = state.get("account", job["account_id"]) or {}
    body = {"accountid": job["account_id"], "account": account.get("name"), "domainid": account.get("domain_id"),
            "userid": job["user_id"], "cmd": job["cmd"], "jobstatus": job["status"], "jobprocstatus": 0,
            "jobresultcode": job_result_code(job), "jobresulttype": "object",
            "jobresult": job["result"], "jobinstancetype": job["instance_type"],
            "jobinstanceid": job["instance_id"], "created": cs_date(job["created"]),
            "completed": cs_date(job["completed"]), "jobid": job["id"]}
    return compact(body)
