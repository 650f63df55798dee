"""Guest networks, VPCs, public IP addresses and static NAT.

The seeded zone's shared network (no owner, ``acltype`` Domain) is visible to every account;
isolated networks and VPC tiers belong to one account. A network is ``Allocated`` until a VM is
placed on it (``Implemented``); the shared one is ``Setup``. Public IPs come from the zone's
public range; an IP with static NAT carries ``isstaticnat``/``virtualmachine*`` fields and the VM
carries ``publicip``/``publicipid``.
"""

from __future__ import annotations

import ipaddress

from ..context import Call
from ..errors import ApiError, cloud_runtime, invalid_parameter, permission_denied
from ..jobs import pending_fields, submit_response
from ..render import compact, cs_date, renderer
from ..spec import command
from ..state import SimState, new_uuid
from .catalog import services_of
from .common import owner_fields, success, zone_name

VPC_TIER_MASK = 24


@renderer("network")
def render_network(state: SimState, network: dict) -> dict:
    offering = state.get("network_offering", network["offering_id"])
    vpc = state.get("vpc", network.get("vpc_id"))
    cidr = ipaddress.ip_network(network["cidr"])
    owner = owner_fields(state, network.get("account_id")) if network.get("account_id") else {
        "domainid": network.get("domain_id"), "domain": "ROOT", "domainpath": "ROOT"}
    return compact({
        "id": network["id"], "name": network["name"], "displaytext": network["displaytext"],
        "broadcastdomaintype": "Vlan", "traffictype": "Guest", "gateway": network["gateway"],
        "netmask": str(cidr.netmask), "cidr": network["cidr"], "zoneid": network["zone_id"],
        "zonename": zone_name(state, network["zone_id"]), "networkofferingid": offering["id"],
        "networkofferingname": offering["name"], "networkofferingdisplaytext": offering["displaytext"],
        "networkofferingconservemode": offering["conservemode"],
        "networkofferingavailability": offering["availability"], "issystem": False, "state": network["state"],
        "related": network["id"], "broadcasturi": f"vlan://{network['vlan']}" if network.get("vlan") else None,
        "dns1": state.get("zone", network["zone_id"])["dns1"], "dns2": state.get("zone", network["zone_id"])["dns2"],
        "type": network["type"], "vlan": network.get("vlan"), "acltype": network["acltype"],
        "subdomainaccess": True if network["acltype"] == "Domain" else None, **owner,
        "isdefault": network["type"] == "Shared", "service": services_of(offering["services"]),
        "networkdomain": network.get("networkdomain"), "restartrequired": False,
        "specifyipranges": offering["specifyipranges"], "vpcid": network.get("vpc_id"),
        "vpcname": vpc["name"] if vpc else None, "canusefordeploy": True, "ispersistent": False,
        "tags": state.tags_of(network["id"]), "displaynetwork": True, "strechedl2subnet": False,
        "redundantrouter": False, "supportsvmautoscaling": network["type"] != "Shared",
        "created": cs_date(network["created"]), "egressdefaultpolicy": offering["egressdefaultpolicy"],
        "internetprotocol": "IPv4", "receivedbytes": 0, "sentbytes": 0, "hasannotations": False,
        **pending_fields(network)})


def visible_networks(call: Call) -> list[dict]:
    store = call.state.store("network")
    shared = [network for network in store if network.get("account_id") is None]
    if call.is_admin and (call.get("listall") or call.get("id")) and not call.get("account"):
        return list(store)
    return shared + list(call.scoped("network"))


def default_network(state: SimState, zone_id: str) -> dict:
    for network in state.store("network"):
        if network["zone_id"] == zone_id and network["type"] == "Shared":
            return network
    raise ApiError(533, "Unable to find a default network in the zone", 4325)


def network_usable(call: Call, network: dict) -> dict:
    if network.get("account_id") not in (None, call.account["id"]) and not call.is_admin:
        call.check_access("network", network)
    return network


def attach_nic(state: SimState, network: dict, vm_id: str, requested_ip: str | None, is_default: bool,
               device: int) -> dict:
    """A NIC on ``network`` with the requested or the lowest free address."""
    if requested_ip:
        if ipaddress.ip_address(requested_ip) not in ipaddress.ip_network(network["cidr"]):
            raise invalid_parameter(f"Invalid requested IP address {requested_ip}: it is not in the network "
                                    f"cidr {network['cidr']}")
        if requested_ip == network["gateway"] or not state.reserve_ip(network["id"], requested_ip):
            raise ApiError(533, f"The IP address {requested_ip} is not available in network "
                                f"{network['name']}", 4320)
        address = requested_ip
    else:
        try:
            address = state.allocate_ip(network["id"], network["cidr"], network["gateway"])
        except LookupError:
            raise ApiError(533, f"Insufficient address capacity in network {network['name']}", 4320) from None
    mac_seq = state.next_seq("mac")
    if network["state"] == "Allocated":
        network["state"] = "Implemented"
        state.touch(network)
    return {"id": new_uuid(), "network_id": network["id"], "ipaddress": address,
            "macaddress": "02:00:%02x:%02x:%02x:%02x" % tuple((mac_seq >> s) & 0xFF for s in (24, 16, 8, 0)),
            "isdefault": is_default, "deviceid": device, "vm_id": vm_id}


def render_nic(state: SimState, nic: dict) -> dict:
    network = state.get("network", nic["network_id"]) or {}
    cidr = ipaddress.ip_network(network.get("cidr", "0.0.0.0/0"))
    return compact({"id": nic["id"], "networkid": nic["network_id"], "networkname": network.get("name"),
                    "netmask": str(cidr.netmask), "gateway": network.get("gateway"), "ipaddress": nic["ipaddress"],
                    "isolationuri": f"vlan://{network['vlan']}" if network.get("vlan") else None,
                    "broadcasturi": f"vlan://{network['vlan']}" if network.get("vlan") else None,
                    "traffictype": "Guest", "type": network.get("type"), "isdefault": nic["isdefault"],
                    "macaddress": nic["macaddress"], "secondaryip": [], "extradhcpoption": [],
                    "deviceid": str(nic["deviceid"]), "virtualmachineid": nic["vm_id"],
                    "vpcid": network.get("vpc_id")})


@command("listNetworks")
def list_networks(call: Call):
    rows = call.filtered(visible_networks(call), keyword_fields=("name", "displaytext"))
    for param, field in (("zoneid", "zone_id"), ("vpcid", "vpc_id"), ("networkofferingid", "offering_id")):
        if call.get(param):
            rows = [row for row in rows if row.get(field) == call.get(param)]
    if call.get("type"):
        rows = [row for row in rows if row["type"].lower() == call.get("type").lower()]
    if call.get("traffictype") and call.get("traffictype").lower() != "guest":
        rows = []
    if call.get("issystem"):
        rows = []
    if "forvpc" in call.values:
        rows = [row for row in rows if bool(row.get("vpc_id")) == call.get("forvpc")]
    if call.get("acltype"):
        rows = [row for row in rows if row["acltype"].lower() == call.get("acltype").lower()]
    return call.page(rows, "network")


@command("createNetwork")
def create_network(call: Call):
    state, offering = call.state, call.state.get("network_offering", call.get("networkofferingid"))
    owner = call.owner_account()
    vpc = call.owned("vpc", call.get("vpcid")) if call.get("vpcid") else None
    if call.get("associatednetworkid"):
        network_usable(call, call.owned("network", call.get("associatednetworkid")))
    if offering["guestiptype"] == "Shared" and not call.is_admin:
        raise permission_denied("Only root admin can create shared networks")
    if vpc and not offering["forvpc"]:
        raise invalid_parameter(f"Network offering {offering['name']} can't be used for VPC networks")
    if offering["forvpc"] and not vpc:
        raise invalid_parameter(f"Network offering {offering['name']} can be used for VPC networks only")
    cidr = network_cidr(call, vpc)
    from .accounts import check_limit
    check_limit(state, owner, "network")
    network = state.add("network", {
        "name": call.get("name"), "displaytext": call.get("displaytext") or call.get("name"),
        "zone_id": call.get("zoneid"), "offering_id": offering["id"], "cidr": str(cidr),
        "gateway": call.get("gateway") or str(next(cidr.hosts())), "type": offering["guestiptype"],
        "state": "Allocated", "acltype": "Account", "account_id": owner["id"], "domain_id": owner["domain_id"],
        "vpc_id": vpc["id"] if vpc else None, "vlan": None, "networkdomain": call.get("networkdomain")
        or "cs%ssim.internal" % owner["number"]})
    if vpc:
        vpc.setdefault("network_ids", []).append(network["id"])
        state.touch(vpc)
    return {"network": state.render("network", network)}


def network_cidr(call: Call, vpc: dict | None) -> ipaddress.IPv4Network:
    gateway, netmask = call.get("gateway"), call.get("netmask")
    if bool(gateway) != bool(netmask):
        raise invalid_parameter("gateway/netmask are required when create ip range")
    if not gateway:
        if vpc:
            raise invalid_parameter("Gateway and netmask are required when creating a VPC network tier")
        return ipaddress.ip_network(call.state.get("zone", call.get("zoneid"))["guest_cidr"])
    try:
        cidr = ipaddress.ip_network(f"{gateway}/{netmask}", strict=False)
    except ValueError:
        raise invalid_parameter(f"Invalid gateway {gateway} or netmask {netmask}") from None
    if vpc:
        vpc_cidr = ipaddress.ip_network(vpc["cidr"])
        if not cidr.subnet_of(vpc_cidr):
            raise invalid_parameter(f"Network cidr {cidr} is not within vpc {vpc['name']} cidr {vpc['cidr']}")
        for other_id in vpc.get("network_ids", []):
            other = call.state.get("network", other_id)
            if other and ipaddress.ip_network(other["cidr"]).overlaps(cidr):
                raise invalid_parameter(f"Network cidr {cidr} overlaps with network {other['name']} of vpc "
                                        f"{vpc['name']}")
    return cidr


@command("deleteNetwork")
def delete_network(call: Call):
    network = call.owned("network", call.get("id"))
    if network.get("account_id") is None and not call.is_admin:
        raise permission_denied("Only root admin can delete shared networks")
    state = call.state

    def work() -> dict:
        in_use = [vm for vm in state.store("vm").rows.values()
                  if any(nic["network_id"] == network["id"] for nic in vm["nics"])]
        if in_use:
            raise cloud_runtime(f"Can't delete the network, not all user vms are expunged. Vm {in_use[0]['name']} "
                                f"is in {in_use[0]['state']} state")
        vpc = state.get("vpc", network.get("vpc_id"))
        if vpc:
            vpc["network_ids"].remove(network["id"])
            state.touch(vpc)
        state.allocated_ips.pop(network["id"], None)
        state.remove("network", network)
        return success()
    return submit_response(state.jobs.submit(call, instance_type="Network", instance=network, work=work))


# -- VPCs --------------------------------------------------------------------------------------
@renderer("vpc")
def render_vpc(state: SimState, vpc: dict) -> dict:
    offering = state.get("vpc_offering", vpc["offering_id"])
    networks = [state.render("network", n) for n in map(lambda i: state.get("network", i),
                                                         vpc.get("network_ids", [])) if n]
    return compact({"id": vpc["id"], "name": vpc["name"], "displaytext": vpc["displaytext"], "state": vpc["state"],
                    "zoneid": vpc["zone_id"], "zonename": zone_name(state, vpc["zone_id"]),
                    "service": services_of(offering["services"]), "cidr": vpc["cidr"],
                    "vpcofferingid": offering["id"], "vpcofferingname": offering["name"],
                    "created": cs_date(vpc["created"]), **owner_fields(state, vpc["account_id"]),
                    "network": networks, "restartrequired": False, "networkdomain": vpc["networkdomain"],
                    "tags": state.tags_of(vpc["id"]), "fordisplay": True, "distributedvpcrouter": False,
                    "regionlevelvpc": False, "redundantvpcrouter": False, "hasannotations": False,
                    **pending_fields(vpc)})


@command("createVPC")
def create_vpc(call: Call):
    state, owner = call.state, call.owner_account()
    cidr_text = call.get("cidr") or "10.0.0.0/16"
    try:
        cidr = ipaddress.ip_network(cidr_text, strict=False)
        if cidr.version != 4:
            raise ValueError(cidr_text)
    except ValueError:
        raise invalid_parameter(f"Invalid CIDR specified {cidr_text}") from None
    if not cidr.is_private:
        raise invalid_parameter(f"Vpc cidr {cidr_text} is not RFC 1918 compliant")
    from .accounts import check_limit
    check_limit(state, owner, "vpc")
    vpc = state.add("vpc", {"name": call.get("name"), "displaytext": call.get("displaytext") or call.get("name"),
                            "zone_id": call.get("zoneid"), "offering_id": call.get("vpcofferingid"),
                            "cidr": str(cidr), "state": "Enabled", "account_id": owner["id"], "network_ids": [],
                            "networkdomain": call.get("networkdomain") or "cs%ssim.internal" % owner["number"]})

    def work() -> dict:
        return {"vpc": state.render("vpc", vpc)}
    job = state.jobs.submit(call, instance_type="Vpc", instance=vpc, work=work,
                            rollback=lambda: state.remove("vpc", vpc))
    return submit_response(job, vpc["id"])


@command("deleteVPC")
def delete_vpc(call: Call):
    vpc, state = call.owned("vpc", call.get("id")), call.state

    def work() -> dict:
        if vpc.get("network_ids"):
            raise cloud_runtime(f"Can't delete VPC {vpc['name']} as it has {len(vpc['network_ids'])} network "
                                "tier(s) which must be deleted first")
        for address in [ip for ip in state.store("public_ip").owned_by(vpc["account_id"]) if ip.get("vpc_id") == vpc["id"]]:
            release_public_ip(state, address)
        state.remove("vpc", vpc)
        return success()
    return submit_response(state.jobs.submit(call, instance_type="Vpc", instance=vpc, work=work))


@command("listVPCs")
def list_vpcs(call: Call):
    rows = call.filtered(list(call.scoped("vpc")), keyword_fields=("name", "displaytext"))
    for param, field in (("zoneid", "zone_id"), ("vpcofferingid", "offering_id"), ("cidr", "cidr"),
                         ("state", "state"), ("displaytext", "displaytext")):
        if call.get(param):
            rows = [row for row in rows if str(row.get(field)).lower() == str(call.get(param)).lower()]
    return call.page(rows, "vpc")


# -- public IP addresses -----------------------------------------------------------------------
@renderer("public_ip")
def render_public_ip(state: SimState, address: dict) -> dict:
    vm = state.get("vm", address.get("vm_id"))
    network = state.get("network", address.get("network_id"))
    vpc = state.get("vpc", address.get("vpc_id"))
    return compact({"id": address["id"], "ipaddress": address["ipaddress"], "allocated": cs_date(address["created"]),
                    "zoneid": address["zone_id"], "zonename": zone_name(state, address["zone_id"]),
                    "issourcenat": address["issourcenat"], **owner_fields(state, address["account_id"]),
                    "forvirtualnetwork": True, "vlanid": address["zone_id"], "vlanname": "vlan://untagged",
                    "isstaticnat": bool(vm), "issystem": False, "virtualmachineid": vm["id"] if vm else None,
                    "virtualmachinetype": "UserVm" if vm else None,
                    "vmipaddress": address.get("vm_ip") if vm else None,
                    "virtualmachinename": vm["name"] if vm else None,
                    "virtualmachinedisplayname": vm["displayname"] if vm else None,
                    "associatednetworkid": network["id"] if network else None,
                    "associatednetworkname": network["name"] if network else None,
                    "networkid": network["id"] if network else None, "state": address["state"],
                    "purpose": "StaticNat" if vm else None, "vpcid": vpc["id"] if vpc else None,
                    "vpcname": vpc["name"] if vpc else None, "tags": state.tags_of(address["id"]),
                    "isportable": False, "fordisplay": True, "hasrules": bool(vm), "forsystemvms": False,
                    "hasannotations": False, **pending_fields(address)})


def public_pool(zone: dict) -> str:
    return "public:" + zone["id"]


@command("associateIpAddress")
def associate_ip_address(call: Call):
    state, owner = call.state, call.owner_account()
    network = call.owned("network", call.get("networkid")) if call.get("networkid") else None
    vpc = call.owned("vpc", call.get("vpcid")) if call.get("vpcid") else None
    zone_id = call.get("zoneid") or (network or vpc or {}).get("zone_id")
    if not zone_id:
        raise invalid_parameter("Either zoneId, networkId or vpcId has to be specified")
    zone = state.get("zone", zone_id)
    from .accounts import check_limit
    check_limit(state, owner, "public_ip")
    try:
        ip = state.allocate_ip(public_pool(zone), zone["public_cidr"])
    except LookupError:
        raise ApiError(533, "Insufficient address capacity", 4320) from None
    address = state.add("public_ip", {"ipaddress": ip, "zone_id": zone["id"], "account_id": owner["id"],
                                      "network_id": network["id"] if network else None,
                                      "vpc_id": vpc["id"] if vpc else None, "state": "Allocating",
                                      "issourcenat": False, "vm_id": None, "vm_ip": None})

    def work() -> dict:
        address["state"] = "Allocated"
        state.touch(address)
        return {"ipaddress": state.render("public_ip", address)}

    def rollback() -> None:
        release_public_ip(state, address)
    return submit_response(state.jobs.submit(call, instance_type="IpAddress", instance=address, work=work,
                                             rollback=rollback), address["id"])


def release_public_ip(state: SimState, address: dict) -> None:
    unset_static_nat(state, address)
    state.release_ip(public_pool(state.get("zone", address["zone_id"])), address["ipaddress"])
    state.remove("public_ip", address)


@command("disassociateIpAddress")
def disassociate_ip_address(call: Call):
    if not call.get("id") and not call.get("ipaddress"):
        raise invalid_parameter("Please specify either IP address or IP address ID")
    address = call.owned("public_ip", call.get("id")) if call.get("id") else find_by_address(call)
    if address["issourcenat"]:
        raise invalid_parameter(f"IP address id={address['id']} is source nat and can't be released")
    state = call.state

    def work() -> dict:
        release_public_ip(state, address)
        return success()
    return submit_response(state.jobs.submit(call, instance_type="IpAddress", instance=address, work=work))


def find_by_address(call: Call) -> dict:
    for address in call.state.store("public_ip"):
        if address["ipaddress"] == call.get("ipaddress"):
            return call.check_access("public_ip", address)
    raise invalid_parameter(f"Unable to find IP address {call.get('ipaddress')}")


@command("listPublicIpAddresses")
def list_public_ip_addresses(call: Call):
    rows = call.filtered(list(call.scoped("public_ip")), name_field="ipaddress", keyword_fields=("ipaddress",))
    for param, field in (("zoneid", "zone_id"), ("ipaddress", "ipaddress"), ("vpcid", "vpc_id"),
                         ("associatednetworkid", "network_id"), ("networkid", "network_id"),
                         ("state", "state")):
        if call.get(param):
            rows = [row for row in rows if str(row.get(field)).lower() == str(call.get(param)).lower()]
    if "isstaticnat" in call.values:
        rows = [row for row in rows if bool(row.get("vm_id")) == call.get("isstaticnat")]
    if "issourcenat" in call.values:
        rows = [row for row in rows if row["issourcenat"] == call.get("issourcenat")]
    if call.get("allocatedonly") is False:
        pass  # free addresses of the range are not listed individually by the simulator
    return call.page(rows, "public_ip")


@command("enableStaticNat")
def enable_static_nat(call: Call):
    state = call.state
    address = call.owned("public_ip", call.get("ipaddressid"))
    vm = call.owned("vm", call.get("virtualmachineid"))
    if call.get("networkid"):
        network_usable(call, call.owned("network", call.get("networkid")))
    if address["account_id"] != vm["account_id"]:
        raise permission_denied("The ip address and the vm must belong to the same account")
    if vm["state"] in ("Destroyed", "Expunging", "Error"):
        raise invalid_parameter(f"Invalid vm id {vm['id']}: vm is in {vm['state']} state")
    if address.get("vm_id") and address["vm_id"] != vm["id"]:
        raise ApiError(537, f"Failed to enable static nat for the ip address id={address['id']} as vm "
                            f"id={address['vm_id']} is already associated with ip id={address['id']}", 4400)
    if vm.get("public_ip_id") and vm["public_ip_id"] != address["id"]:
        raise ApiError(537, f"Failed to enable static nat for the ip address id={address['id']} as vm "
                            f"id={vm['id']} is already associated with ip id={vm['public_ip_id']}", 4400)
    nic = next(n for n in vm["nics"] if n["isdefault"])
    address.update(vm_id=vm["id"], vm_ip=call.get("vmguestip") or nic["ipaddress"], network_id=nic["network_id"])
    vm["public_ip_id"] = address["id"]
    state.touch(address)
    state.touch(vm)
    return success()


def unset_static_nat(state: SimState, address: dict) -> None:
    vm = state.get("vm", address.get("vm_id"))
    if vm is not None:
        vm.pop("public_ip_id", None)
        state.touch(vm)
    address["vm_id"], address["vm_ip"] = None, None
    state.touch(address)


@command("disableStaticNat")
def disable_static_nat(call: Call):
    address, state = call.owned("public_ip", call.get("ipaddressid")), call.state
    if not address.get("vm_id"):
        raise invalid_parameter("Specified IP address id is not associated with any vm Id")

    def work() -> dict:
        unset_static_nat(state, address)
        return success()
    return submit_response(state.jobs.submit(call, instance_type="IpAddress", instance=address, work=work))

