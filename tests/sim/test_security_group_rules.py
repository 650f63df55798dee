"""Security group rules as ``SecurityGroupManagerImpl.authorizeSecurityGroupRule`` validates and
stores them (inside the job: each refusal fails the job with 431), and ``deleteSecurityGroup``'s
refusal of a group that rules allow."""

from __future__ import annotations

import pytest

from cloudstack_sim.seed import USER_TYPE, add_account


@pytest.fixture
async def group(demo) -> dict:
    return (await demo.call("createSecurityGroup", name="web"))["securitygroup"]


async def authorize(api, group: dict, **params) -> dict:
    return await api.job("authorizeSecurityGroupIngress", securitygroupid=group["id"], **params)


def reference(account: str, group: str) -> dict:
    return {"usersecuritygrouplist[0].account": account, "usersecuritygrouplist[0].group": group}


CIDR = {"cidrlist": "10.0.0.0/8"}
REFUSALS = [
    ({"protocol": "tcp", "startport": 22, "endport": 22}, "At least one cidr or at least one security group needs "
                                                          "to be specified"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "cidrlist": "10.0.0.1"}, "Invalid cidr 10.0.0.1"),
    ({"protocol": "gre", **CIDR}, "Invalid protocol gre"),
    ({"protocol": "-1", **CIDR}, "Invalid protocol -1"),
    ({"protocol": "256", **CIDR}, "Invalid protocol number: 256"),
    ({"protocol": "all", "startport": 1, "endport": 2, **CIDR}, "Cannot specify startPort or endPort without "
                                                               "specifying protocol"),
    ({"startport": 80, **CIDR}, "Cannot specify startPort or endPort without specifying protocol"),
    ({"protocol": "tcp", "startport": 22, **CIDR}, "Invalid port range specified, startPort = 22, endPort = null"),
    ({"protocol": "udp", "startport": 10, "endport": 5, **CIDR}, "Invalid port range 10:5"),
    ({"protocol": "tcp", "startport": 1, "endport": 70000, **CIDR}, "Invalid port numbers 1:70000"),
    ({"protocol": "tcp", "startport": -5, "endport": 22, **CIDR}, "Invalid port numbers -5:22"),
    ({"protocol": "tcp", "startport": -1, "endport": 22, **CIDR}, "Invalid port range -1:22"),
    ({"protocol": "icmp", **CIDR}, "Invalid ICMP type/code specified, icmpType = null, icmpCode = null"),
    ({"protocol": "icmp", "icmptype": 8, **CIDR}, "Invalid ICMP type/code specified, icmpType = 8, icmpCode = null"),
    ({"protocol": "icmp", "icmptype": -1, "icmpcode": 0, **CIDR}, "Invalid icmp code"),
    ({"protocol": "icmp", "icmptype": 8, "icmpcode": -1, **CIDR}, "Invalid icmp code: need non-negative icmp code "),
    ({"protocol": "icmp", "icmptype": 300, "icmpcode": 0, **CIDR}, "Invalid icmp type/code "),
    ({"protocol": "tcp", "startport": 1, "endport": 2, "usersecuritygrouplist[0].group": "web"},
     "Invalid user group specified, fields 'group' and 'account' cannot be null, please specify groups in the "
     "form:  userGroupList[0].group=XXX&userGroupList[0].account=YYY"),
]


@pytest.mark.parametrize("params, text", REFUSALS, ids=[text[:40] for _, text in REFUSALS])
async def test_refusals_fail_the_job_with_431_and_add_nothing(demo, group, params, text):
    job = await authorize(demo, group, **params)
    assert (job["jobstatus"], job["jobresultcode"], job["jobresult"]) == (2, 431, {"errorcode": 431,
                                                                                   "errortext": text})
    listed = (await demo.call("listSecurityGroups", id=group["id"]))["securitygroup"][0]
    assert listed["ingressrule"] == []


async def test_unknown_group_references(demo, group):
    domain_id = group["domainid"]
    job = await authorize(demo, group, protocol="tcp", startport=1, endport=2,
                          **reference("nobody", "web"))
    assert job["jobresult"] == {"errorcode": 431, "errortext": f"Nonexistent account: nobody when trying to "
                                                              f"authorize security group rule  for {group['id']}:tcp:1:2"}
    job = await authorize(demo, group, protocol="tcp", startport=1, endport=2,
                          **reference("demo", "db"))
    assert job["jobresult"] == {"errorcode": 431, "errortext": f"Nonexistent group db for account demo/{domain_id} "
                                                              "is given, unable to authorize security group rule."}


async def stored(api, group: dict, **params) -> dict:
    """The one rule a request stores, as the job result shows it."""
    result = (await authorize(api, group, **params))["jobresult"]
    [rule] = result["securitygroup"]["ingressrule"]
    return {k: v for k, v in rule.items() if k not in ("ruleid", "tags")}


async def test_how_rules_are_stored(demo, group):
    assert await stored(demo, group, **CIDR) == {"protocol": "all", "startport": 0, "endport": 0,
                                                 "cidr": "10.0.0.0/8"}
    assert await stored(demo, group, protocol="TCP", startport=0, endport=0, **CIDR) == {
        "protocol": "tcp", "startport": 0, "endport": 65535, "cidr": "10.0.0.0/8"}
    assert await stored(demo, group, protocol="47", startport=5, endport=9, **CIDR) == {
        "protocol": "47", "startport": 0, "endport": 0, "cidr": "10.0.0.0/8"}   # numbered: ports ignored
    assert await stored(demo, group, protocol="1", icmptype=8, icmpcode=0, **CIDR) == {
        "protocol": "icmp", "icmptype": -1, "icmpcode": -1, "cidr": "10.0.0.0/8"}   # 1 is every ICMP message
    assert await stored(demo, group, protocol="udp", startport=53, endport=53, cidrlist="2001:db8::/32") == {
        "protocol": "udp", "startport": 53, "endport": 53, "cidr": "2001:db8::/32"}


async def test_a_group_that_rules_allow_cannot_be_deleted(demo, group):
    db = (await demo.call("createSecurityGroup", name="db"))["securitygroup"]
    rule = await stored(demo, db, protocol="tcp", startport=5432, endport=5432, **reference("demo", "web"))
    assert (rule["securitygroupname"], rule["account"]) == ("web", "demo")
    status, _, body = await demo.error("deleteSecurityGroup", id=group["id"])
    assert (status, body["errortext"]) == (536, "Cannot delete group when there are security rules that allow "
                                                "this group")
    await demo.call("deleteSecurityGroup", id=db["id"])   # nothing allows db: it goes, and its rule with it
    await demo.call("deleteSecurityGroup", id=group["id"])


async def test_a_group_allowing_itself_cannot_be_deleted(demo, group):
    # listByAllowedSecurityGroupId does not look at which group holds the rule.
    await stored(demo, group, protocol="tcp", startport=1, endport=65535, **reference("demo", "web"))
    status, _, _ = await demo.error("deleteSecurityGroup", id=group["id"])
    assert status == 536


async def test_accounts_of_another_domain_cannot_be_referenced(sim, demo, group):
    root = next(iter(sim.state.store("domain")))
    domain = sim.state.add("domain", {"name": "elsewhere", "path": "ROOT/elsewhere", "parent_id": root["id"],
                                      "level": 1})
    add_account(sim.state, "faraway", USER_TYPE, domain["id"])
    job = await authorize(demo, group, protocol="tcp", startport=1, endport=2,
                          **reference("faraway", "default"))
    assert job["jobresult"]["errortext"].startswith("Nonexistent account: faraway")
