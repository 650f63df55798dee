"""The data a fresh simulator starts with.

One **Advanced zone with security groups enabled** (``sim-zone-1``): its shared guest network
``defaultGuestNetwork`` (10.100.0.0/16, SecurityGroup provider) gives EC2-classic style instances
with security groups, and VPC offerings are available too so EC2 VPCs/subnets map onto CloudStack
VPCs and isolated tiers (real CloudStack restricts VPCs in SG zones; the simulator allows both so
the bridge can exercise both mappings). Templates, offerings and OS types mirror a small public
cloud; the root admin ``admin`` and the demo account ``demo`` (user ``demo``, with its default
security group) are created with the configured or random API keys.
"""

from __future__ import annotations

from .config import SimConfig
from .state import SimState, new_key, new_uuid

GB = 1024 ** 3
ROOT_DOMAIN = "ROOT"
ADMIN_TYPE, USER_TYPE = 1, 0

# CloudStack's Resource.ResourceType ordinals and the global max.account.* defaults.
RESOURCE_TYPES = (("user_vm", 20), ("public_ip", 20), ("volume", 20), ("snapshot", 20), ("template", 20),
                  ("project", 20), ("network", 20), ("vpc", 20), ("cpu", 40), ("memory", 40960),
                  ("primary_storage", 200), ("secondary_storage", 400))

OS_TYPES = (("Ubuntu 22.04 LTS", "Ubuntu"), ("Debian GNU/Linux 12 (64-bit)", "Debian"),
            ("Rocky Linux 9", "CentOS"), ("CentOS 7", "CentOS"), ("Windows Server 2022 (64-bit)", "Windows"),
            ("Other Linux (64-bit)", "Other"))

# name, displaytext, cpus, MHz, MB
SERVICE_OFFERINGS = (
    ("t2.nano", "t2.nano: 1 vCPU, 512 MB", 1, 2000, 512),
    ("t2.micro", "t2.micro: 1 vCPU, 1 GB", 1, 2000, 1024),
    ("t2.small", "t2.small: 1 vCPU, 2 GB", 1, 2000, 2048),
    ("t2.medium", "t2.medium: 2 vCPU, 4 GB", 2, 2000, 4096),
    ("t2.large", "t2.large: 2 vCPU, 8 GB", 2, 2000, 8192),
    ("m5.large", "m5.large: 2 vCPU, 8 GB", 2, 2500, 8192),
    ("m5.xlarge", "m5.xlarge: 4 vCPU, 16 GB", 4, 2500, 16384),
    ("c5.large", "c5.large: 2 vCPU, 4 GB", 2, 3000, 4096),
    ("Small Instance", "Small Instance", 1, 500, 512),
    ("Medium Instance", "Medium Instance", 1, 1000, 1024),
)

# name, displaytext, size GB (0 = custom)
DISK_OFFERINGS = (("Small", "Small Disk, 5 GB", 5), ("Medium", "Medium Disk, 20 GB", 20),
                  ("Large", "Large Disk, 100 GB", 100), ("Custom", "Custom Disk", 0))

# name, displaytext, os type, password enabled, size GB
TEMPLATES = (
    ("Ubuntu 22.04 LTS", "Ubuntu 22.04 LTS (Jammy) cloud image", "Ubuntu 22.04 LTS", False, 10),
    ("Debian 12", "Debian 12 (Bookworm) generic cloud image", "Debian GNU/Linux 12 (64-bit)", False, 8),
    ("Rocky Linux 9", "Rocky Linux 9 GenericCloud", "Rocky Linux 9", False, 10),
    ("CentOS 7", "CentOS 7 (64-bit) GenericCloud", "CentOS 7", False, 8),
    ("Windows Server 2022", "Windows Server 2022 Datacenter (password enabled)",
     "Windows Server 2022 (64-bit)", True, 40),
)

SG_SERVICES = ("SecurityGroup", "UserData", "Dhcp", "Dns")
ISOLATED_SERVICES = ("Vpn", "Dhcp", "Dns", "Firewall", "Lb", "UserData", "SourceNat", "StaticNat",
                     "PortForwarding")
VPC_TIER_SERVICES = ("Vpn", "Dhcp", "Dns", "Lb", "UserData", "SourceNat", "StaticNat", "PortForwarding",
                     "NetworkACL")
VPC_SERVICES = ("Vpn", "Dhcp", "Dns", "Lb", "UserData", "SourceNat", "StaticNat", "PortForwarding",
                "NetworkACL")


def seed_defaults(state: SimState) -> None:
    domain = state.add("domain", {"name": ROOT_DOMAIN, "path": ROOT_DOMAIN, "parent_id": None, "level": 0})
    zone = state.add("zone", {"name": "sim-zone-1", "description": "Simulated advanced zone with security groups",
                              "network_type": "Advanced", "sg_enabled": True, "dns1": "8.8.8.8",
                              "dns2": "8.8.4.4", "internal_dns1": "10.0.0.2", "public_cidr": "203.0.113.0/24",
                              "guest_cidr": "10.1.1.0/24", "allocation_state": "Enabled"})
    os_types = {name: state.add("os_type", {"name": name, "category": category}) for name, category in OS_TYPES}
    for name, text, cpus, speed, memory in SERVICE_OFFERINGS:
        state.add("service_offering", {"name": name, "displaytext": text, "cpunumber": cpus, "cpuspeed": speed,
                                       "memory": memory, "storagetype": "shared", "provisioningtype": "thin",
                                       "offerha": False, "limitcpuuse": False, "isvolatile": False})
    for name, text, size in DISK_OFFERINGS:
        state.add("disk_offering", {"name": name, "displaytext": text, "disksize": size, "iscustomized": size == 0,
                                    "storagetype": "shared", "provisioningtype": "thin"})
    seed_offerings(state)
    admin = add_account(state, "admin", ADMIN_TYPE, domain["id"])
    add_user(state, admin, "admin")
    demo = add_account(state, "demo", USER_TYPE, domain["id"])
    add_user(state, demo, "demo")
    for name, text, os_name, password, size in TEMPLATES:
        state.add("template", {"name": name, "displaytext": text, "ispublic": True, "isfeatured": True,
                               "passwordenabled": password, "format": "QCOW2", "hypervisor": "Simulator",
                               "ostype_id": os_types[os_name]["id"], "size": size * GB, "account_id": admin["id"],
                               "templatetype": "BUILTIN", "zone_ids": [zone["id"]], "isready": True,
                               "bootable": True, "isextractable": False, "sshkeyenabled": False,
                               "url": f"http://images.sim.local/{name.lower().replace(' ', '-')}.qcow2",
                               "permitted_accounts": [], "crosszones": False, "arch": "x86_64", "bits": 64})
    offering = next(o for o in state.store("network_offering") if o["name"] == "DefaultSharedNetworkOfferingWithSGService")
    state.add("network", {"name": "defaultGuestNetwork", "displaytext": "Shared guest network with security groups",
                          "zone_id": zone["id"], "offering_id": offering["id"], "cidr": "10.100.0.0/16",
                          "gateway": "10.100.0.1", "type": "Shared", "state": "Setup", "acltype": "Domain",
                          "domain_id": domain["id"], "vpc_id": None, "vlan": "100",
                          "networkdomain": "cs1sim.internal"})
    from .commands.security_groups import default_group
    default_group(state, demo)
    default_group(state, admin)


def seed_offerings(state: SimState) -> None:
    for name, text, guest_type, services, for_vpc, default in (
            ("DefaultSharedNetworkOfferingWithSGService", "Offering for Shared Security group enabled networks",
             "Shared", SG_SERVICES, False, True),
            ("DefaultIsolatedNetworkOfferingWithSourceNatService",
             "Offering for Isolated networks with Source Nat service enabled", "Isolated", ISOLATED_SERVICES,
             False, True),
            ("DefaultIsolatedNetworkOfferingForVpcNetworks",
             "Offering for Isolated VPC networks with Source Nat service enabled", "Isolated", VPC_TIER_SERVICES,
             True, True)):
        state.add("network_offering", {"name": name, "displaytext": text, "guestiptype": guest_type,
                                       "services": list(services), "forvpc": for_vpc, "isdefault": default,
                                       "state": "Enabled", "traffictype": "Guest", "availability": "Optional",
                                       "specifyvlan": guest_type == "Shared", "conservemode": True,
                                       "specifyipranges": guest_type == "Shared", "egressdefaultpolicy": True})
    state.add("vpc_offering", {"name": "Default VPC offering", "displaytext": "Default VPC offering",
                               "services": list(VPC_SERVICES), "isdefault": True, "state": "Enabled"})


def add_account(state: SimState, name: str, account_type: int, domain_id: str) -> dict:
    limits = {resource: (-1 if account_type == ADMIN_TYPE else maximum) for resource, maximum in RESOURCE_TYPES}
    return state.add("account", {"name": name, "type": account_type, "domain_id": domain_id, "state": "enabled",
                                 "limits": limits, "number": state.next_seq("account") + 1})


def add_user(state: SimState, account: dict, username: str) -> dict:
    return state.add("user", {"account_id": account["id"], "username": username, "firstname": username,
                              "lastname": "user", "email": f"{username}@sim.local", "state": "enabled",
                              "apikey": new_key(), "secretkey": new_key(), "timezone": None})


def apply_credentials(state: SimState, config: SimConfig) -> None:
    """Give the admin and demo users the configured keys (keeping loaded or random ones otherwise)."""
    for username, credentials in (("admin", config.admin_credentials), ("demo", config.demo_credentials)):
        if credentials is None:
            continue
        user = next((u for u in state.store("user") if u["username"] == username), None)
        if user is None:
            continue
        state.keys_by_apikey.pop((user.get("apikey") or "").lower(), None)
        user["apikey"], user["secretkey"] = credentials
        state.index("user", user)
        state.touch(user)


def credentials_of(state: SimState, username: str) -> tuple[str, str]:
    user = next(u for u in state.store("user") if u["username"] == username)
    return user["apikey"], user["secretkey"]


__all__ = ["seed_defaults", "apply_credentials", "credentials_of", "new_uuid"]
