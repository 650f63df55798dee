"""Runs a mapping record: the one place where Describe semantics, DryRun for Describe actions
and the translation of backend failures into EC2 errors are applied."""

from __future__ import annotations

from typing import Any

from ec2bridge.describe import apply_filters, check_max_results, compile_filters, paginate
from ec2bridge.backend_errors import translate
from ec2bridge.cloudstack import BackendUnavailable, CloudStackError
from ec2bridge.errors import EC2Error, dry_run_ok
from ec2bridge.ids import check_format
from mappings.records import Describe, Selector


async def run(record: Any, ctx: Any, request: dict) -> dict:
    try:
        if isinstance(record, Describe):
            return await describe(record, ctx, request)
        return await record.handler(ctx, request)
    except (CloudStackError, BackendUnavailable) as error:
        raise translate(error, {param: kind for param, (kind, _) in record.errors.items()},
                        {param: _first(request.get(member)) for param, (_, member) in record.errors.items()}) from error


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _select(items: list[dict], selector: Selector, wanted: list[str] | None) -> list[dict]:
    if not wanted:
        return items
    if selector.kind:
        for value in wanted:
            check_format(selector.kind, value)
    wanted_set = set(wanted)
    chosen = [item for item in items if item.get(selector.field) in wanted_set]
    missing = sorted(wanted_set - {item.get(selector.field) for item in chosen})
    if missing:
        raise selector.not_found(missing)
    return chosen


async def describe(record: Describe, ctx: Any, request: dict) -> dict:
    max_results = check_max_results(request.get("MaxResults"), record.paging, record.name)
    selected_by = [s.param for s in record.selectors if request.get(s.param)]
    if max_results is not None and selected_by:
        raise EC2Error("InvalidParameterCombination",
                       f"The parameter {selected_by[0]} cannot be used with the parameter MaxResults")
    tokens = ctx.services.page_tokens
    after = tokens.read(record.name, request["NextToken"]) if request.get("NextToken") else None
    predicates = compile_filters(request.get("Filters"), record.filters, record.taggable)
    items = await record.source(ctx, request)
    for selector in record.selectors:
        items = _select(items, selector, request.get(selector.param))
    if request.get("DryRun"):
        raise dry_run_ok()
    items = apply_filters(items, predicates)
    sort_field = record.sort_key
    page, token = paginate(items, lambda item: item.get(sort_field) or "", max_results, after, tokens, record.name)
    output: dict[str, Any] = {record.result_key: page}
    if token:
        output["NextToken"] = token
    return output
