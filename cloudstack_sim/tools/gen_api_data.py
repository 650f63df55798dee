"""Generate ``cloudstack_sim/data/api.json`` from the shared CloudStack reference.

The simulator needs, per command: its Java class (``cmd`` in async job results), async and
async-create flags, list flag, response wrapper and object keys, and parameters (name, type,
required, entity type, collection type). It also answers ``listApis`` with CloudStack 4.18's own
discovery entries for the commands it implements. Both are facts read from
``/work/shared/reference/cloudstack``; this script extracts them into one compact file so the
package ships no copy of the whole reference.

A few commands the bridge relies on are missing from the reference's 65 (``listResourceLimits``,
``getUser``, ``listDomains``, ``recoverVirtualMachine``, ``updateTemplate``); their parameters come
from the 4.18 ``listApis`` dump, plus the few parameters newer servers added (``EXTRA_PARAMS``) that
the simulator implements, so these commands accept what the reference's commands accept.

Usage: ``python cloudstack_sim/tools/gen_api_data.py [REFERENCE_DIR]`` (run as a file: importing
the package would register handlers against the data this script is about to write).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT_REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "cloudstack"
OUTPUT = Path(__file__).resolve().parent.parent / "data" / "api.json"

# Commands outside the reference's 65: (wrapper, object key, Java class) as CloudStack names them.
EXTRA_COMMANDS = {
    "listResourceLimits": ("listresourcelimitsresponse", "resourcelimit",
                           "org.apache.cloudstack.api.command.user.resource.ListResourceLimitsCmd"),
    "getUser": ("getuserresponse", "user", "org.apache.cloudstack.api.command.admin.user.GetUserCmd"),
    "listDomains": ("listdomainsresponse", "domain",
                    "org.apache.cloudstack.api.command.admin.domain.ListDomainsCmd"),
    "recoverVirtualMachine": ("recovervirtualmachineresponse", "virtualmachine",
                              "org.apache.cloudstack.api.command.user.vm.RecoverVMCmd"),
    "updateTemplate": ("updatetemplateresponse", "template",
                       "org.apache.cloudstack.api.command.user.template.UpdateTemplateCmd"),
}
# listApis carries no entity types; these are the @Parameter(entityType=...) of the extra commands.
EXTRA_ENTITIES = {
    "recoverVirtualMachine": {"id": "UserVmResponse"},
    "listDomains": {"id": "DomainResponse"},
    "listResourceLimits": {"domainid": "DomainResponse", "projectid": "ProjectResponse"},
    "updateTemplate": {"id": "TemplateResponse", "ostypeid": "GuestOSResponse"},
}
# Parameters added after 4.18 to extra commands: (name, CommandType) as the @Parameter declares them.
EXTRA_PARAMS = {
    "updateTemplate": (("arch", "STRING"),),   # BaseUpdateTemplateOrIsoCmd, since 4.20
}
# listApis type names -> CommandType names used by the reference.
LISTAPIS_TYPES = {"string": "STRING", "uuid": "UUID", "integer": "INTEGER", "long": "LONG",
                  "boolean": "BOOLEAN", "list": "LIST", "map": "MAP", "date": "DATE"}


def java_class(command: dict) -> str:
    source = command["source"]
    return source.split("src/main/java/", 1)[1].removesuffix(".java").replace("/", ".")


def compact_param(param: dict) -> list:
    return [param["name"], param["type"], bool(param.get("required")),
            param.get("entityType"), param.get("collectionType")]


def reference_command(command: dict) -> dict:
    params = command["params"] + (command.get("admin_only_params") or [])
    seen: dict[str, list] = {}
    for param in params:
        seen.setdefault(param["name"], compact_param(param))
    return {"java": java_class(command), "async": command["async"],
            "async_create": command["async_create"], "list": command["list"],
            "wrapper": command["response_wrapper"], "object": command["object_name"],
            "response_class": command["response_class"], "params": list(seen.values())}


def extra_command(name: str, entry: dict) -> dict:
    wrapper, obj, java = EXTRA_COMMANDS[name]
    entities = EXTRA_ENTITIES.get(name, {})
    params = [[p["name"], LISTAPIS_TYPES.get(p["type"], p["type"].upper()), bool(p["required"]),
               entities.get(p["name"]), None] for p in entry["params"] if p]
    params += [[param, kind, False, None, None] for param, kind in EXTRA_PARAMS.get(name, ())]
    return {"java": java, "async": entry["isasync"], "async_create": False,
            "list": name.startswith("list"), "wrapper": wrapper, "object": obj,
            "response_class": None, "params": sorted(params)}


def discovery_entry(entry: dict) -> dict:
    """A listApis entry with gson's empty objects (``{}``) removed, as the live server omits them."""
    return {**entry, "response": [field for field in entry["response"] if field],
            "params": [param for param in entry["params"] if param]}


def generate(reference_dir: Path) -> dict:
    reference = json.loads((reference_dir / "cloudstack_api_reference.json").read_text())
    listapis = {api["name"]: api for api in
                json.loads((reference_dir / "listApis_4.18.json").read_text())["api"]}
    commands = {command["name"]: reference_command(command) for command in reference["commands"]}
    for name in EXTRA_COMMANDS:
        commands[name] = extra_command(name, listapis[name])
    discovery = {name: discovery_entry(listapis[name]) for name in sorted(commands) if name in listapis}
    return {"_source": reference["_meta"]["source_commit"], "commands": commands, "listapis": discovery}


def main(argv: list[str]) -> int:
    reference_dir = Path(argv[0]) if argv else DEFAULT_REFERENCE
    OUTPUT.write_text(json.dumps(generate(reference_dir), separators=(",", ":"), sort_keys=True))
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
