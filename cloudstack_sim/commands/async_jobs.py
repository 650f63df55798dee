"""``queryAsyncJobResult`` and ``listAsyncJobs`` over the job records kept by ``jobs.JobQueue``.

A job belongs to the account that submitted it; another normal user asking for it gets CloudStack's
``PermissionDeniedException`` (531).
"""

from __future__ import annotations

from ..context import Call
from ..spec import command


@command("queryAsyncJobResult")
def query_async_job_result(call: Call):
    job = call.owned("job", call.get("jobid"))
    return call.state.render("job", job)


@command("listAsyncJobs")
def list_async_jobs(call: Call):
    rows = call.filtered(list(call.scoped("job")), keyword_fields=("cmd",))
    if call.get("startdate"):
        from datetime import datetime
        try:
            start = datetime.strptime(call.get("startdate")[:10], "%Y-%m-%d").timestamp()
        except ValueError:
            from ..errors import bad_value
            raise bad_value(call.spec.wrapper, "startdate", call.get("startdate")) from None
        rows = [job for job in rows if job["created"] >= start]
    return call.page(rows, "job")
