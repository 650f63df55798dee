"""Scenario 5: RunInstances MaxCount=50 through the bridge, timed and counted.

A fresh simulator (no VMs, deploy jobs of ``job_duration`` seconds) and bridge. Measured:

- the RunInstances call's latency, as boto3 sees it;
- the time from the call until DescribeInstances shows all instances ``running``, polled every
  ``POLL_S`` (its resolution); the target is one deploy job plus two of the bridge's job-poll
  intervals (``CloudStackClient``'s ``poll_interval``);
- the CloudStack calls made, per command, during the call and from its return until all run
  (the latter includes the listVirtualMachines of the harness's own polls, which are counted).

It runs as the simulator's root admin: the demo account has CloudStack's default limit of 20
user VMs (``max.account.user.vms``), and the simulator has no ``updateResourceLimit`` to raise it.
"""

from __future__ import annotations

import inspect
import time
from collections import Counter
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from bench import processes, stacks
from bench.plan import Profile
from bench.stacks import Keys
from ec2bridge.cloudstack import CloudStackClient

POLL_S = 0.05
BRIDGE_POLL_S = inspect.signature(CloudStackClient).parameters["poll_interval"].default


def unavailable(error: ClientError, what: str) -> dict:
    code = error.response["Error"].get("Code", "?")
    message = error.response["Error"].get("Message", "")
    verdict = "not available" if code == "UnsupportedOperation" else "failed"
    return {"available": False, "reason": f"{what} {verdict} ({code}: {message})"}


def choose_image(ec2) -> str:
    images = sorted(ec2.describe_images()["Images"], key=lambda image: image.get("Name", ""))
    linux = [image for image in images if image.get("Platform") != "windows"]
    if not (linux or images):
        raise LookupError("the bridge lists no images")
    return (linux or images)[0]["ImageId"]


def wait_running(ec2, ids: list[str], deadline: float) -> tuple[float, int, Counter]:
    """Poll until every instance is running: (monotonic time seen, polls made, last states)."""
    polls = 0
    while True:
        polls += 1
        reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
        states = Counter(i["State"]["Name"] for r in reservations for i in r["Instances"])
        if states.get("running", 0) == len(ids) or time.monotonic() > deadline:
            return time.monotonic(), polls, states
        time.sleep(POLL_S)


def measure(ec2, simulator: stacks.Simulator, count: int, job_duration: float) -> dict:
    try:
        image_id = choose_image(ec2)
    except ClientError as error:
        return unavailable(error, "DescribeImages (needed for an image id)")
    before = simulator.call_counts()
    started = time.monotonic()
    try:
        answer = ec2.run_instances(ImageId=image_id, InstanceType="t2.micro", MinCount=count, MaxCount=count)
    except ClientError as error:
        return unavailable(error, "RunInstances")
    returned = time.monotonic()
    at_return = simulator.call_counts()
    ids = [instance["InstanceId"] for instance in answer["Instances"]]
    try:
        seen, polls, states = wait_running(ec2, ids, returned + job_duration + 120)
    except ClientError as error:
        return {**unavailable(error, "DescribeInstances (needed to see the instances run)"),
                "call_s": round(returned - started, 3)}
    after = simulator.call_counts() - at_return
    running_target = job_duration + 2 * BRIDGE_POLL_S
    return {"available": True, "count": count, "instances_returned": len(ids), "image_id": image_id,
            "call_s": round(returned - started, 3), "all_running_s": round(seen - started, 3),
            "all_running": states.get("running", 0) == len(ids), "final_states": dict(states),
            "job_duration_s": job_duration, "bridge_poll_interval_s": BRIDGE_POLL_S,
            "running_target_s": round(running_target, 3), "harness_polls": polls, "harness_poll_s": POLL_S,
            "cloudstack_calls_during_call": dict(sorted((at_return - before).items())),
            "cloudstack_calls_until_running": dict(sorted(after.items()))}


def run(profile: Profile, workdir: Path, keys: Keys, log=print) -> dict:
    log(f"run-instances: MaxCount={profile.run_count}, deploy jobs of {profile.job_duration}s")
    simulator = bridge = None
    try:
        simulator = stacks.start_simulator(workdir, keys, 0, job_duration=profile.job_duration)
        bridge = stacks.start_bridge(workdir, simulator, "bridge-run-instances")
        ec2 = stacks.bridge_client(bridge, keys.admin)
        result = measure(ec2, simulator, profile.run_count, profile.job_duration)
        result["bridge_memory"] = bridge.memory_mb()
        return result
    except (processes.ServerError, OSError, BotoCoreError, LookupError) as error:
        return {"available": False, "reason": f"not run: {str(error).splitlines()[0]}"}
    finally:
        for server in (bridge, simulator.server if simulator else None):
            if server is not None:
                server.stop()
