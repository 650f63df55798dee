"""SSH key pairs: real RSA keys made with ``cryptography``; fingerprints as CloudStack prints them.

CloudStack's fingerprint is the MD5 digest of the decoded OpenSSH public key blob, as colon-separated
lowercase hex. ``createSSHKeyPair`` returns the private key (PEM) once; ``registerSSHKeyPair``
takes an OpenSSH public key. Names are unique per account.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..context import Call
from ..errors import invalid_parameter
from ..render import compact, renderer
from ..spec import command
from ..state import SimState
from .common import owner_fields, success


def fingerprint(public_key: str) -> str:
    blob = base64.b64decode(public_key.split()[1])
    return ":".join(f"{byte:02x}" for byte in hashlib.md5(blob).digest())


def normalise_public_key(text: str) -> str:
    """The ``type base64`` part of an OpenSSH public key, validated by parsing it."""
    parts = text.strip().split()
    if len(parts) < 2:
        raise invalid_parameter("Public key is invalid")
    try:
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, TypeError, IndexError):
        raise invalid_parameter("Public key is invalid") from None
    return " ".join(parts)


@renderer("keypair")
def render_keypair(state: SimState, keypair: dict) -> dict:
    owner = {k: v for k, v in owner_fields(state, keypair["account_id"]).items() if k != "domainpath"}
    return compact({"id": keypair["id"], "name": keypair["name"], **owner,
                    "fingerprint": keypair["fingerprint"], "hasannotations": False})


def find_keypair(state: SimState, account_id: str, name: str) -> dict | None:
    return next((k for k in state.store("keypair").owned_by(account_id) if k["name"] == name), None)


def check_new_name(state: SimState, account: dict, name: str) -> None:
    if find_keypair(state, account["id"], name):
        raise invalid_parameter(f"A key pair with name '{name}' already exists.")


@command("createSSHKeyPair")
def create_ssh_key_pair(call: Call):
    owner, name = call.owner_account(), call.get("name")
    check_new_name(call.state, owner, name)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()).decode()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    keypair = call.state.add("keypair", {"name": name, "account_id": owner["id"], "publickey": public,
                                         "fingerprint": fingerprint(public)})
    return {"keypair": {**call.state.render("keypair", keypair), "privatekey": private_pem}}


@command("registerSSHKeyPair")
def register_ssh_key_pair(call: Call):
    owner, name = call.owner_account(), call.get("name")
    check_new_name(call.state, owner, name)
    public = normalise_public_key(call.get("publickey"))
    print_ = fingerprint(public)
    if any(k["fingerprint"] == print_ for k in call.state.store("keypair").owned_by(owner["id"])):
        raise invalid_parameter(f"A key pair with key '{public}' already exists for this account.")
    keypair = call.state.add("keypair", {"name": name, "account_id": owner["id"], "publickey": public,
                                         "fingerprint": print_})
    return {"keypair": call.state.render("keypair", keypair)}


@command("deleteSSHKeyPair")
def delete_ssh_key_pair(call: Call):
    owner, name = call.owner_account(), call.get("name")
    keypair = find_keypair(call.state, owner["id"], name)
    if keypair is None:
        raise invalid_parameter(f"A key pair with name '{name}' does not exist for account {owner['name']} in "
                                f"specified domain id")
    call.state.remove("keypair", keypair)
    return success()


@command("listSSHKeyPairs")
def list_ssh_key_pairs(call: Call):
    rows = call.filtered(list(call.scoped("keypair")))
    if call.get("fingerprint"):
        rows = [row for row in rows if row["fingerprint"] == call.get("fingerprint")]
    return call.page(rows, "keypair")
