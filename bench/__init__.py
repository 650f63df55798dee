"""The ec2bridge benchmark harness: closed-loop load against the bridge, its back end and peers.

Benchmarks measure; tests don't time. ``python -m bench`` (``./dev bench``) starts every system
under test as its own process on 127.0.0.1, replays one signed request per probe from C
concurrent connections with Debian's ``wrk``, and writes ``bench/RESULTS.md`` and
``bench/results.jsonl``.

Design, one module per step:

- ``plan``: profiles (full, quick), probes grouped by fleet size, and the issue's targets.
- ``stacks``: the servers (bridge on a seeded CloudStack simulator, moto, the harness's own
  ``servers``), started through ``processes`` (CPU and memory read from /proc).
- ``signed``: the request, signed by botocore (SigV4, SigV2) or the CloudStack signer.
- ``checks``: the answer to that request is verified before any timing counts.
- ``wrk``: the generated Lua script, the wrk run and the parsing of its result line.
- ``runner``: preflight, run sizing, A/B rounds; ``run_instances``: scenario 5.
- ``report``: medians, ratios, targets, markdown and JSON lines.

Comparisons are ratios taken in one session on one machine: each fleet's probes run in rounds
(A/B/A/B), so slow drift of a busy machine affects both sides of a ratio alike.
"""
