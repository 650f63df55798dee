"""Templates as CloudStack lists and changes them: the template filters, readiness, ``id`` past the
filter, ``arch``, ``updateTemplate`` and launch permissions (QueryManagerImpl / TemplateManagerImpl)."""

from __future__ import annotations

import pytest

from .conftest import account_api, catalog, deploy
from .reference import object_problems

GB = 1024 ** 3
SEEDED = {"Ubuntu 22.04 LTS", "Debian 12", "Rocky Linux 9", "CentOS 7", "Windows Server 2022"}


def add_template(sim, owner: str, name: str, *, public: bool = False, featured: bool = False,
                 ready: bool = True, shared_with: tuple[str, ...] = ()) -> dict:
    """A template record straight into the state (the way a finished registration leaves it)."""
    state = sim.state
    account = next(a for a in state.store("account") if a["name"] == owner)
    return state.add("template", {
        "name": name, "displaytext": f"{name} image", "ispublic": public, "isfeatured": featured,
        "passwordenabled": False, "format": "QCOW2", "hypervisor": "KVM",
        "ostype_id": next(iter(state.store("os_type")))["id"], "size": 2 * GB, "account_id": account["id"],
        "templatetype": "USER", "zone_ids": [next(iter(state.store("zone")))["id"]], "isready": ready,
        "bootable": True, "isextractable": False, "sshkeyenabled": False,
        "permitted_accounts": list(shared_with), "crosszones": False, "url": None})


@pytest.fixture
def other(sim, session):
    return account_api(sim, session, "other")


@pytest.fixture
def library(sim, other):
    """demo's own templates, other's templates in every visibility, and the seeded featured ones."""
    for name, owner, options in (
            ("own-ready", "demo", {}), ("own-pending", "demo", {"ready": False}),
            ("shared-ready", "other", {"shared_with": ("demo",)}),
            ("shared-pending", "other", {"shared_with": ("demo",), "ready": False}),
            ("public-ready", "other", {"public": True}), ("public-pending", "other", {"public": True, "ready": False}),
            ("private-other", "other", {})):
        add_template(sim, owner, name, **options)
    return {t["name"]: t for t in sim.state.store("template")}


async def names(api, **params) -> set[str]:
    listed = await api.call("listTemplates", **params)
    return {t["name"] for t in listed.get("template", [])}


# -- filters ---------------------------------------------------------------------------------------
FILTER_CASES = {
    "featured": SEEDED,
    "community": {"public-ready"},
    "self": {"own-ready", "own-pending"},
    "selfexecutable": {"own-ready"},
    "shared": {"shared-ready", "shared-pending"},
    "sharedexecutable": {"shared-ready"},
    # own or public - never merely shared - and, for a user's own call, in any state
    "executable": {"own-ready", "own-pending", "public-ready", "public-pending"} | SEEDED,
}


@pytest.mark.parametrize("templatefilter", sorted(FILTER_CASES))
async def test_filters_match_cloudstack(library, demo, templatefilter):
    assert await names(demo, templatefilter=templatefilter) == FILTER_CASES[templatefilter]


async def test_all_is_for_admins_only(library, demo, admin):
    status, _, body = await demo.error("listTemplates", templatefilter="all")
    assert (status, body["cserrorcode"], body["errortext"]) == (431, 4350, "Filter all can be specified by admin only")
    assert await names(admin, templatefilter="all") == set(library)


async def test_ready_only_when_asked_or_account_specific(library, sim, demo, admin):
    assert await names(demo, templatefilter="self", isready="true") == {"own-ready"}
    domain_id = next(iter(sim.state.store("domain")))["id"]
    for_demo = await names(admin, templatefilter="executable", account="demo", domainid=domain_id)
    assert for_demo == {"own-ready", "public-ready"} | SEEDED
    assert await names(admin, templatefilter="self") == SEEDED   # the admin's own


async def test_another_users_account_cannot_be_listed(library, demo):
    status, _, _ = await demo.error("listTemplates", templatefilter="self", account="other")
    assert status == 531


# -- arch -----------------------------------------------------------------------------------------
async def test_arch_and_bits(demo):
    ids = await catalog(demo)
    seeded = (await demo.call("listTemplates", templatefilter="featured"))["template"]
    assert {(t["arch"], t["bits"]) for t in seeded} == {("x86_64", 64)}
    base = dict(format="QCOW2", hypervisor="KVM", url="http://example.invalid/a.qcow2", zoneid=ids["zone"],
                ostypeid=seeded[0]["ostypeid"])
    arm = (await demo.call("registerTemplate", name="arm", arch="aarch64", **base))["template"][0]
    old = (await demo.call("registerTemplate", name="old", bits=32, arch="i686", **base))["template"][0]
    plain = (await demo.call("registerTemplate", name="plain", **base))["template"][0]
    assert (arm["arch"], arm["bits"], old["arch"], old["bits"], plain["arch"]) == ("aarch64", 64, "i686", 32, "x86_64")
    assert await names(demo, templatefilter="self", arch="aarch64") == {"arm"}
    assert await names(demo, templatefilter="self", arch="x86_64") == {"plain"}
    status, _, body = await demo.error("registerTemplate", name="bad", arch="sparc", **base)
    assert (status, body["cserrorcode"], body["errortext"]) == (431, 9999, "Unsupported arch type: sparc")


# -- updateTemplate ---------------------------------------------------------------------------------
async def test_update_template_changes_and_answers_the_short_view(sim, demo):
    ids = await catalog(demo)
    mine = add_template(sim, "demo", "golden")
    os_types = (await demo.call("listOsTypes"))["ostype"]
    vm = await deploy(demo, {**ids, "linux": mine["id"]})
    updated = (await demo.call("updateTemplate", id=mine["id"], name="golden-2", displaytext="new words",
                               ostypeid=os_types[-1]["id"], passwordenabled="true", arch="aarch64",
                               **{"details[0].UEFI": "LEGACY"}))["template"]
    assert not object_problems(updated, "TemplateResponse", "updateTemplate")
    assert {k: updated[k] for k in ("id", "name", "displaytext", "ostypeid", "templatetype", "account")} == {
        "id": mine["id"], "name": "golden-2", "displaytext": "new words", "ostypeid": os_types[-1]["id"],
        "templatetype": "USER", "account": "demo"}
    assert updated["details"] == {"UEFI": "LEGACY"}
    assert not {"zoneid", "isready", "status", "passwordenabled"} & set(updated)   # newUpdateResponse's short form
    listed = (await demo.call("listTemplates", templatefilter="self", id=mine["id"]))["template"][0]
    assert (listed["displaytext"], listed["passwordenabled"], listed["arch"]) == ("new words", True, "aarch64")
    shown = (await demo.call("listVirtualMachines", id=vm["id"]))["virtualmachine"][0]
    assert (shown["templatename"], shown["ostypeid"]) == ("golden-2", os_types[-1]["id"])
    api = (await demo.call("listApis", name="updateTemplate"))["api"][0]
    assert api["isasync"] is False


async def test_update_template_permissions_follow_domain_checker(sim, demo, other):
    private = add_template(sim, "other", "private")
    shared = add_template(sim, "other", "shared", shared_with=("demo",))
    public = add_template(sim, "other", "public", public=True)
    status, _, body = await demo.error("updateTemplate", id=private["id"], displaytext="x")
    assert (status, body["errortext"]) == (
        531, "Account demo does not have permission to launch instances from template private")
    status, _, body = await demo.error("updateTemplate", id=public["id"], displaytext="x")
    assert (status, body["errortext"]) == (531, "Domain Admin and regular users can modify only their own Public "
                                                "templates")
    # DomainChecker lets a launch permission through for private templates, OperateEntry or not.
    assert (await demo.call("updateTemplate", id=shared["id"], displaytext="x"))["template"]["displaytext"] == "x"


@pytest.mark.parametrize("params, status, text", [
    ({"isrouting": "true"}, 531, "Parameter isrouting can only be specified by a Root Admin, permission denied"),
    ({"templatetype": "ROUTING"}, 431, "Users can not update Template to template type ROUTING."),
    ({"templatetype": "BUILTIN"}, 431, "System and Builtin templates must be cross zone."),
    ({"templatetype": "GOLDEN"}, 431, "Please specify a valid templatetype: ROUTING,SYSTEM,BUILTIN,PERHOST,USER,VNF,"
                                      "DATADISK,ISODISK"),
    ({"format": "DOC"}, 431, "Image format: DOC is incorrect. Supported formats are [QCOW2, RAW, VHD, VHDX, OVA, ISO, "
                             "TAR, VMDK, BAREMETAL]"),
    ({"arch": "sparc"}, 431, "Unsupported arch type: sparc"),
])
async def test_update_template_refusals(sim, demo, params, status, text):
    mine = add_template(sim, "demo", "mine")
    got, _, body = await demo.error("updateTemplate", id=mine["id"], **params)
    assert (got, body["errortext"]) == (status, text)


async def test_update_of_a_removed_template(sim, demo):
    ids = await catalog(demo)
    gone = (await demo.call("registerTemplate", name="gone", format="QCOW2", hypervisor="KVM", zoneid=ids["zone"],
                            url="http://example.invalid/g.qcow2",
                            ostypeid=(await demo.call("listOsTypes"))["ostype"][0]["id"]))["template"][0]
    await demo.result("deleteTemplate", id=gone["id"])
    status, _, body = await demo.error("updateTemplate", id=gone["id"], displaytext="x")
    assert (status, body["cserrorcode"], body["errortext"]) == (431, 4350, "Unable to find Template/ISO with "
                                                                           "specified id")
    status, _, body = await demo.error("deployVirtualMachine", zoneid=ids["zone"], templateid=gone["id"],
                                       serviceofferingid=ids["offering"])
    assert (status, body["errortext"]) == (431, f"Unable to use template {gone['id']}")


# -- listTemplatePermissions ------------------------------------------------------------------------
async def test_template_permissions_of_removed_and_foreign_templates(sim, demo, admin, other):
    ids = await catalog(demo)
    gone = (await demo.call("registerTemplate", name="gone", format="QCOW2", hypervisor="KVM", zoneid=ids["zone"],
                            url="http://example.invalid/g.qcow2",
                            ostypeid=(await demo.call("listOsTypes"))["ostype"][0]["id"]))["template"][0]
    await demo.result("deleteTemplate", id=gone["id"])
    for api in (demo, admin):   # a removed template passes the uuid check, then is not found
        status, _, body = await api.error("listTemplatePermissions", id=gone["id"])
        assert (status, body["cserrorcode"], body["errortext"]) == (431, 4350, f"unable to find template with id "
                                                                               f"{gone['id']}")
    private = add_template(sim, "other", "private")
    shared = add_template(sim, "other", "shared", shared_with=("demo",))
    assert (await demo.error("listTemplatePermissions", id=private["id"]))[0] == 531
    permission = (await demo.call("listTemplatePermissions", id=shared["id"]))["templatepermission"]
    # A private template's list ends with its owner; domainid is for root admins' eyes only.
    assert (permission["ispublic"], permission["account"]) == (False, ["demo", "other"])
    assert "domainid" not in permission
    as_admin = (await admin.call("listTemplatePermissions", id=shared["id"]))["templatepermission"]
    assert as_admin["domainid"] == next(iter(sim.state.store("domain")))["id"]
    public = (await demo.call("listTemplatePermissions", id=ids["linux"]))["templatepermission"]
    assert public["ispublic"] is True and "account" not in public   # gson omits an empty list


async def test_update_template_permissions_accounts(sim, demo, other):
    mine = add_template(sim, "demo", "mine")
    domain_id = next(iter(sim.state.store("domain")))["id"]
    status, _, body = await demo.error("updateTemplatePermissions", id=mine["id"], accounts="nobody", op="add")
    assert (status, body["errortext"]) == (431, f"Unable to grant a launch permission to account nobody in domain "
                                                f"id={domain_id}, account not found.  No permissions updated, please "
                                                "verify the account names and retry.")
    status, _, body = await demo.error("updateTemplatePermissions", id=mine["id"], op="add")
    assert (status, body["errortext"]) == (431, "Operation add requires accounts or projectIds to be passed in")
    # The caller's own name is skipped: an owner always may launch its template.
    await demo.call("updateTemplatePermissions", id=mine["id"], accounts="demo,other", op="add", ispublic="true")
    permission = (await demo.call("listTemplatePermissions", id=mine["id"]))["templatepermission"]
    assert (permission["ispublic"], permission["account"]) == (True, ["other"])
    await demo.call("updateTemplatePermissions", id=mine["id"], accounts="other,nobody", op="remove")
    assert "account" not in (await demo.call("listTemplatePermissions", id=mine["id"]))["templatepermission"]
    await demo.call("updateTemplatePermissions", id=mine["id"], accounts="other", op="add")
    await demo.call("updateTemplatePermissions", id=mine["id"], op="reset")   # private again, nobody permitted
    permission = (await demo.call("listTemplatePermissions", id=mine["id"]))["templatepermission"]
    assert (permission["ispublic"], permission["account"]) == (False, ["demo"])


# -- listTemplates with an id ---------------------------------------------------------------------------
async def test_an_id_bypasses_the_template_filter(library, demo, admin):
    """searchForTemplatesInternal: the filter is not applied to ``id`` (only its readiness rule is)."""
    async def by_id(api, name: str, **params) -> set[str]:
        return await names(api, id=library[name]["id"], **params)
    assert await by_id(demo, "shared-pending", templatefilter="self") == {"shared-pending"}
    assert await by_id(demo, "public-ready", templatefilter="featured") == {"public-ready"}
    assert await by_id(demo, "own-pending", templatefilter="sharedexecutable") == set()   # ready ones only
    assert await by_id(demo, "shared-pending", templatefilter="executable") == {"shared-pending"}
    assert await by_id(admin, "private-other", templatefilter="self") == {"private-other"}
    status, _, body = await demo.error("listTemplates", templatefilter="executable", id=library["private-other"]["id"])
    assert (status, body["cserrorcode"], body["errortext"]) == (
        531, 4365, "Account demo does not have permission to launch instances from template private-other")
    status, _, _ = await demo.error("listTemplates", templatefilter="all", id=library["own-ready"]["id"])
    assert status == 431
    # ``ids`` is an ordinary filter: the templatefilter still decides.
    assert await names(demo, templatefilter="self", ids=library["shared-ready"]["id"]) == set()
    assert await names(demo, templatefilter="executable", ids=library["private-other"]["id"]) == set()


async def test_an_id_of_a_removed_template_lists_nothing(demo):
    ids = await catalog(demo)
    gone = (await demo.call("registerTemplate", name="gone", format="QCOW2", hypervisor="KVM", zoneid=ids["zone"],
                            url="http://example.invalid/g.qcow2",
                            ostypeid=(await demo.call("listOsTypes"))["ostype"][0]["id"]))["template"][0]
    await demo.result("deleteTemplate", id=gone["id"])
    assert await demo.call("listTemplates", templatefilter="executable", id=gone["id"]) == {}
