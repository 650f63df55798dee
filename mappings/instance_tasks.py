"""Background work that outlives an instance call, written down before it starts.

RunInstances and TerminateInstances answer as soon as CloudStack has accepted their jobs (AWS
answers with ``pending`` / ``shutting-down`` too); the outcome is observed afterwards:

- **launch**: wait for each deploy job; on success create and attach the extra EBS volumes of
  the BlockDeviceMappings and tag the volumes; on failure record the StateReason AWS would give
  (``Server.InsufficientInstanceCapacity`` for CloudStack's capacity error 533, otherwise
  ``Server.InternalError``) and destroy the VM, so that it shows as ``terminated``.
- **terminate**: wait for each destroy job; on success keep the instance's tombstone so that it
  stays visible as ``terminated``; on failure clear ``shutting-down``.

**Removing a VM.** Terminated instances cannot come back on AWS, so the bridge expunges when
CloudStack lets the caller: normal users may pass ``expunge`` only under
``allow.user.expunge.recover.vm`` (false by default), and CloudStack refuses otherwise inside the
destroy job, after accepting the call. ``listCapabilities`` answers the setting for the caller
(``allowuserexpungerecovervm``, always true for admins), so it is asked once per call; without it
the VM is destroyed and CloudStack's expunge thread removes it later (``expunge.delay``). Either
way the bridge's tombstone keeps the instance visible as ``terminated`` for the hour AWS shows
it, whether or not CloudStack lets users see destroyed VMs (``allow.user.view.destroyed.vm``).

**Crash safety.** Every piece of work is a row in :class:`InstanceStore`'s ``tasks`` table,
inserted before the first CloudStack call it depends on and updated after each step (job ids,
created volume ids, finished instances). The worker renews a short lease while it waits. If the
process dies, the lease runs out and the next instance call of the same account, in any bridge
process, claims the task and resumes it from its last recorded step with that caller's
credentials: a deploy job is looked up again (CloudStack keeps job results), a volume created
but not yet recorded is found again by its deterministic name before anything is created twice.
Until then DescribeInstances still tells the truth from CloudStack (a VM whose deploy failed is
in ``Error``, shown as ``terminated``). A crash between CloudStack accepting a deploy and the
bridge recording it leaves a VM the bridge did not record: it is shown like any VM the bridge
did not launch (its own reservation id) and can be terminated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ec2bridge.cloudstack import BackendUnavailable, CloudStackError, JobTimeout
from ec2bridge.stores.instances import InstanceStore, Task
from mappings import instance_view
from mappings.tags import create_cloudstack_tags

log = logging.getLogger(__name__)
LEASE_SECONDS = 30.0  # a worker renews its lease at a third of this; a dead one's task is free after it
CAPACITY_CODES = (533,)  # INSUFFICIENT_CAPACITY_ERROR: DeployVMCmd's InsufficientCapacityException
INSUFFICIENT_CAPACITY = ("Server.InsufficientInstanceCapacity",
                         "Server.InsufficientInstanceCapacity: Insufficient capacity to satisfy instance request")


class Background:
    """The process's running background tasks (kept referenced until they end)."""

    def __init__(self, database: Any = None):
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        """Cancel the running tasks (shutdown); their leases run out and another process, or
        this one restarted, resumes them."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the running tasks (tests and orderly shutdowns)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def launch_failure_reason(error: Exception) -> tuple[str, str]:
    if isinstance(error, CloudStackError) and error.code in CAPACITY_CODES:
        return INSUFFICIENT_CAPACITY
    return instance_view.LAUNCH_FAILED


class Worker:
    """Runs one task to its end with the credentials of the call that started or resumed it."""

    def __init__(self, ctx, task: Task):
        self.ctx = ctx
        self.task = task
        self.store: InstanceStore = ctx.services.store(InstanceStore)
        self.client = ctx.services.cloudstack

    async def run(self) -> None:
        try:
            if self.task.kind == "launch":
                await asyncio.gather(*(self._launched(entry) for entry in self.task.payload["instances"]
                                       if not entry.get("done")))
            elif self.task.kind == "terminate":
                await asyncio.gather(*(self._terminated(entry) for entry in self.task.payload["instances"]
                                       if not entry.get("done")))
            await self.store.finish_task(self.task)
        except (BackendUnavailable, CloudStackError) as error:
            # The lease runs out and the task is resumed later; nothing is lost.
            log.warning("background %s task %s interrupted: %s", self.task.kind, self.task.task_id, error)
        except Exception:
            log.exception("background %s task %s failed", self.task.kind, self.task.task_id)

    async def save(self) -> None:
        await self.store.save_task(self.task, LEASE_SECONDS)

    async def wait_job(self, command: str, job_id: str) -> dict:
        """The job's result, renewing the lease while CloudStack works (bounded by job_wait)."""
        deadline = time.monotonic() + self.client.job_wait
        while True:
            try:
                return await self.client.poller.wait(self.ctx.creds, command, job_id, LEASE_SECONDS / 3)
            except JobTimeout:
                if time.monotonic() > deadline:
                    raise
                await self.save()

    # -- launch ----------------------------------------------------------------------------------
    async def _launched(self, entry: dict) -> None:
        try:
            await self.wait_job("deployVirtualMachine", entry["job_id"])
            await self._add_volumes(entry)
        except CloudStackError as error:
            await self._launch_failed(entry, launch_failure_reason(error))
        entry["done"] = True
        await self.save()

    async def _add_volumes(self, entry: dict) -> None:
        payload = self.task.payload
        created: dict = entry.setdefault("volumes", {})
        for spec in payload.get("volumes", ()):
            device = spec["device"]
            if device not in created:
                created[device] = await self._create_volume(entry, spec)
                await self.save()
                await self.wait_job("createVolume", created[device]["job_id"])
            if not created[device].get("attached"):
                job = await self.client.submit(self.ctx.creds, "attachVolume", {
                    "id": created[device]["id"], "virtualmachineid": entry["vm_id"],
                    "deviceid": instance_view.device_id(device)})
                await self.wait_job("attachVolume", job["jobid"])
                await self.store.set_delete_on_termination(created[device]["id"], entry["instance_id"],
                                                           spec["delete_on_termination"])
                created[device]["attached"] = True
                await self.save()
        if payload.get("volume_tags") and not entry.get("tagged"):
            volumes = await self.ctx.cs_list("listVolumes", virtualmachineid=entry["vm_id"])
            await create_cloudstack_tags(self.ctx, "Volume", [v["id"] for v in volumes], payload["volume_tags"])
            entry["tagged"] = True

    async def _create_volume(self, entry: dict, spec: dict) -> dict:
        # A deterministic name lets a resumed task find a volume created just before a crash.
        name = f"{entry['instance_id']}-{spec['device'].rsplit('/', 1)[-1]}"
        existing = await self.ctx.cs_list("listVolumes", name=name)
        if existing:
            return {"id": existing[0]["id"], "job_id": None}
        params = {"name": name, "zoneid": self.task.payload["zone_id"]}
        if spec.get("snapshot_id"):
            params["snapshotid"] = spec["snapshot_id"]
        else:
            params.update(diskofferingid=self.task.payload["disk_offering_id"], size=spec["size"])
        job = await self.client.submit(self.ctx.creds, "createVolume", params)
        return {"id": job["id"], "job_id": job["jobid"]}

    async def _launch_failed(self, entry: dict, reason: tuple[str, str]) -> None:
        items = await instance_view.list_instances(self.ctx, [entry["vm_id"]], with_volumes=False)
        if items:
            await self.store.record_terminated(entry["instance_id"], instance_view.tombstone(items[0]),
                                               state_reason=reason)
        else:
            await self.store.record_transition([entry["instance_id"]], "", reason)
        created = [v["id"] for v in entry.get("volumes", {}).values()]
        try:
            job_id = await destroy(self.ctx, entry["vm_id"], created, expunge=await may_expunge(self.ctx))
            await self.wait_job("destroyVirtualMachine", job_id)
        except CloudStackError as error:  # the VM stays in Error: still shown as terminated
            log.warning("could not remove failed instance %s: %s", entry["instance_id"], error)

    # -- terminate -------------------------------------------------------------------------------
    async def _terminated(self, entry: dict) -> None:
        try:
            await self.wait_job("destroyVirtualMachine", entry["job_id"])
            await self.store.record_terminated(entry["instance_id"], entry["tombstone"],
                                               state_reason=instance_view.USER_SHUTDOWN)
        except CloudStackError as error:
            log.warning("terminating %s failed in CloudStack: %s", entry["instance_id"], error)
            await self.store.cancel_termination([entry["instance_id"]])
        entry["done"] = True
        await self.save()


async def may_expunge(ctx) -> bool:
    """Whether CloudStack lets the caller expunge VMs (see "Removing a VM" above). A caller whose
    role may not list capabilities gets the plain destroy that every user may do."""
    try:
        capability = (await ctx.cs_call("listCapabilities")).get("capability") or {}
    except CloudStackError as error:
        log.warning("listCapabilities refused (%s): destroying without expunge", error)
        return False
    return capability.get("allowuserexpungerecovervm") is True


async def destroy(ctx, vm_id: str, volume_ids: list[str], *, expunge: bool) -> str:
    """Submit the removal of a VM (and the given data volumes); returns the job id."""
    params: dict[str, Any] = {"id": vm_id}
    if expunge:
        params["expunge"] = True
    if volume_ids:
        params["volumeids"] = volume_ids
    job = await ctx.services.cloudstack.submit(ctx.creds, "destroyVirtualMachine", params)
    return job["jobid"]


async def record_task(ctx, kind: str, owner: str, payload: dict) -> Task:
    """Write the intent down (before the work it describes can be lost)."""
    return await ctx.services.store(InstanceStore).add_task(kind, owner, payload, LEASE_SECONDS)


def run_task(ctx, task: Task) -> asyncio.Task:
    return ctx.services.store(Background).spawn(Worker(ctx, task).run(), name=f"{task.kind}-{task.task_id}")


async def resume_orphans(ctx, owner: str) -> None:
    """Claim and resume the tasks of ``owner`` whose worker died (see the module docstring)."""
    store: InstanceStore = ctx.services.store(InstanceStore)
    for task in await store.claim_orphans(owner, LEASE_SECONDS):
        log.info("resuming %s task %s of %s", task.kind, task.task_id, owner)
        run_task(ctx, task)
