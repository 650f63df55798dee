"""Key pairs end to end: CreateKeyPair, ImportKeyPair, DeleteKeyPair and DescribeKeyPairs
through boto3, the aws cli and boto 2, on CloudStack SSH key pairs.

Fingerprints are checked against values computed here with ``cryptography`` from the key
material itself, following AWS's documented definitions (and, where ``ssh-keygen`` is
installed, against OpenSSH's own SHA-256 fingerprint). Each module run works in fresh
CloudStack accounts made in the simulator, so other modules sharing the bridge never see or
disturb these key pairs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import boto.ec2.connection
import botocore.exceptions
import pytest
from boto.ec2.regioninfo import RegionInfo
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from cloudstack_sim.seed import USER_TYPE, add_account, add_user
from tests.bridge_server import REGION


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code_of(caught: pytest.ExceptionInfo) -> str:
    return caught.value.response["Error"]["Code"]


def new_account(bridge, prefix: str) -> tuple[str, str]:
    """A fresh CloudStack account and user; its API keys work as EC2 keys (auto-enrollment)."""
    async def create():
        state = bridge.services.simulator.state
        root = next(d for d in state.store("domain") if d["name"] == "ROOT")
        account = add_account(state, unique(prefix), USER_TYPE, root["id"])
        user = add_user(state, account, account["name"])
        return user["apikey"], user["secretkey"]
    return bridge.call(create())


@pytest.fixture(scope="module")
def keys(bridge):
    return new_account(bridge, "kp-owner")


@pytest.fixture(scope="module")
def ec2(bridge, keys):
    return bridge.client(credentials=keys)


@pytest.fixture(scope="module")
def stranger(bridge):
    return bridge.client(credentials=new_account(bridge, "kp-stranger"))


def cloudstack(bridge, keys, command: str, **params) -> dict:
    return bridge.call(bridge.services.cloudstack.run(keys, command, params))


# --- expected values, computed independently from the key material ---------------------

def colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def expected_created_rsa(pem: str) -> str:
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return colon_hex(hashlib.sha1(der).digest())


def expected_imported_rsa(public_key) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return colon_hex(hashlib.md5(der).digest())


def openssh(public_key) -> str:
    return public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def expected_ed25519(public_key) -> str:
    blob = base64.b64decode(openssh(public_key).split()[1])
    return base64.b64encode(hashlib.sha256(blob).digest()).decode()


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def one(ec2, name: str, **params) -> dict:
    (item,) = ec2.describe_key_pairs(KeyNames=[name], **params)["KeyPairs"]
    return item


# --- CreateKeyPair -------------------------------------------------------------------------

def test_create_rsa_key_pair(ec2):
    name = unique("rsa")
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    created = ec2.create_key_pair(KeyName=name)
    assert created["KeyName"] == name
    assert created["KeyPairId"].startswith("key-") and len(created["KeyPairId"]) == 21
    assert created["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert created["KeyFingerprint"] == expected_created_rsa(created["KeyMaterial"])
    assert created["Tags"] == []
    described = one(ec2, name, IncludePublicKey=True)
    private = serialization.load_pem_private_key(created["KeyMaterial"].encode(), password=None)
    assert described["KeyPairId"] == created["KeyPairId"]
    assert described["KeyFingerprint"] == created["KeyFingerprint"]
    assert described["KeyType"] == "rsa"
    assert described["PublicKey"] == f"{openssh(private.public_key())} {name}"
    assert before <= described["CreateTime"] <= datetime.now(timezone.utc) + timedelta(seconds=5)
    assert "PublicKey" not in one(ec2, name)


def test_create_ed25519_key_pair(ec2):
    name = unique("ed")
    created = ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    assert created["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    private = serialization.load_ssh_private_key(created["KeyMaterial"].encode(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    assert created["KeyFingerprint"] == expected_ed25519(private.public_key())
    described = one(ec2, name, IncludePublicKey=True)
    assert described["KeyType"] == "ed25519"
    assert described["KeyFingerprint"] == created["KeyFingerprint"]
    assert described["PublicKey"] == f"{openssh(private.public_key())} {name}"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="OpenSSH's ssh-keygen is not installed")
def test_ed25519_fingerprint_is_openssh_sha256(ec2, tmp_path):
    created = ec2.create_key_pair(KeyName=unique("ed-ssh"), KeyType="ed25519")
    path = tmp_path / "id_ed25519"
    path.write_text(created["KeyMaterial"])
    path.chmod(0o600)
    listed = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)], capture_output=True, text=True,
                            check=True).stdout
    # ssh-keygen prints "256 SHA256:<base64 without padding> comment (ED25519)"; AWS pads it.
    assert listed.split()[1] == "SHA256:" + created["KeyFingerprint"].rstrip("=")


CLIENT_LOGGERS = ("botocore", "boto3", "urllib3")  # the test's own client logs what it receives


def test_created_key_material_is_never_logged(ec2, caplog):
    """Nothing the bridge or the simulator logs, even at DEBUG, holds a private key."""
    with caplog.at_level(logging.DEBUG):
        created = ec2.create_key_pair(KeyName=unique("secret"))
        ed = ec2.create_key_pair(KeyName=unique("secret-ed"), KeyType="ed25519")
    server_side = "\n".join(record.getMessage() for record in caplog.records
                            if not record.name.startswith(CLIENT_LOGGERS))
    for material in (created["KeyMaterial"], ed["KeyMaterial"]):
        for line in material.splitlines()[1:-1]:
            assert line not in server_side


def test_create_duplicate_name(ec2):
    name = unique("dup")
    ec2.create_key_pair(KeyName=name)
    for key_type in ("rsa", "ed25519"):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            ec2.create_key_pair(KeyName=name, KeyType=key_type)
        assert code_of(caught) == "InvalidKeyPair.Duplicate"
        assert caught.value.response["Error"]["Message"] == f"The keypair '{name}' already exists."


@pytest.mark.parametrize("name, why", [("x" * 256, "too long"), ("clé", "not ASCII"), ("tab\there", "control")])
def test_create_invalid_name(ec2, name, why):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.create_key_pair(KeyName=name)
    assert code_of(caught) == "InvalidParameterValue", why


def test_longest_name_is_accepted(ec2):
    name = unique("long")
    name += "n" * (255 - len(name))
    assert ec2.create_key_pair(KeyName=name)["KeyName"] == name
    assert one(ec2, name)["KeyName"] == name


@pytest.mark.parametrize("params", [{"KeyType": "dsa"}, {"KeyFormat": "ppk"}, {"KeyFormat": "der"}])
def test_create_unsupported_options(ec2, params):
    name = unique("opt")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.create_key_pair(KeyName=name, **params)
    assert code_of(caught) == "InvalidParameterValue"
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"] == []


def test_create_with_tags(ec2):
    name = unique("tagged")
    tags = [{"Key": "team", "Value": "blue"}, {"Key": "empty", "Value": ""}]
    created = ec2.create_key_pair(KeyName=name, TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}])
    assert sorted(created["Tags"], key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])
    assert sorted(one(ec2, name)["Tags"], key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])


@pytest.mark.parametrize("spec", [
    {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]},
    {"ResourceType": "key-pair", "Tags": [{"Key": "aws:reserved", "Value": "b"}]},
    {"ResourceType": "key-pair", "Tags": [{"Key": "k" * 129, "Value": "b"}]},
    {"ResourceType": "key-pair", "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]},
])
def test_create_with_bad_tags_creates_nothing(ec2, spec):
    name = unique("badtags")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.create_key_pair(KeyName=name, TagSpecifications=[spec])
    assert code_of(caught) in ("InvalidParameterValue", "TagLimitExceeded")
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"] == []


def test_create_dry_run(ec2):
    name = unique("dry")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.create_key_pair(KeyName=name, DryRun=True)
    assert code_of(caught) == "DryRunOperation"
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"] == []


def test_cli_create_and_describe(bridge, keys):
    name = unique("cli")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1],
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}

    def aws(*args: str) -> dict:
        result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "aws"), "--endpoint-url", bridge.url,
                                 "--output", "json", "ec2", *args], capture_output=True, text=True, env=env,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    created = aws("create-key-pair", "--key-name", name)
    assert created["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert created["KeyFingerprint"] == expected_created_rsa(created["KeyMaterial"])
    described = aws("describe-key-pairs", "--key-names", name)["KeyPairs"]
    assert [(k["KeyName"], k["KeyPairId"], k["KeyFingerprint"], k["KeyType"]) for k in described] == [
        (name, created["KeyPairId"], created["KeyFingerprint"], "rsa")]


# --- ImportKeyPair -------------------------------------------------------------------------

def ssh2_text(public_key, comment: str) -> bytes:
    """RFC 4716: a header (here split over two lines with a backslash) and a wrapped body."""
    body = openssh(public_key).split()[1]
    lines = [b"---- BEGIN SSH2 PUBLIC KEY ----", f'Comment: "{comment[:10]}\\'.encode(), f'{comment[10:]}"'.encode()]
    lines += [body[i:i + 70].encode() for i in range(0, len(body), 70)]
    return b"\n".join(lines + [b"---- END SSH2 PUBLIC KEY ----", b""])


RSA_FORMATS = {
    "openssh": lambda key: (openssh(key) + " someone@example\n").encode(),
    "openssh-base64": lambda key: base64.b64encode(openssh(key).encode()),
    "ssh2": lambda key: ssh2_text(key, "rsa key made by the test suite"),
    "pem": lambda key: key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    "pem-pkcs1": lambda key: key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
    "der": lambda key: key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    "der-base64": lambda key: base64.b64encode(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)),
}


@pytest.mark.parametrize("fmt", sorted(RSA_FORMATS))
def test_import_rsa_formats(ec2, fmt):
    public = rsa_key().public_key()
    name = unique(f"imp-{fmt}")
    imported = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=RSA_FORMATS[fmt](public))
    assert imported["KeyName"] == name and imported["KeyPairId"].startswith("key-")
    assert imported["KeyFingerprint"] == expected_imported_rsa(public)
    described = one(ec2, name, IncludePublicKey=True)
    assert (described["KeyFingerprint"], described["KeyType"]) == (imported["KeyFingerprint"], "rsa")
    assert described["PublicKey"] == f"{openssh(public)} {name}"


@pytest.mark.parametrize("fmt", ["openssh", "ssh2"])
def test_import_ed25519(ec2, fmt):
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    material = (openssh(public) + " me@host").encode() if fmt == "openssh" else ssh2_text(public, "ed25519 key test")
    name = unique("imp-ed")
    imported = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=material,
                                   TagSpecifications=[{"ResourceType": "key-pair",
                                                       "Tags": [{"Key": "kind", "Value": "ed"}]}])
    assert imported["KeyFingerprint"] == expected_ed25519(public)
    assert imported["Tags"] == [{"Key": "kind", "Value": "ed"}]
    assert one(ec2, name)["KeyType"] == "ed25519"


@pytest.mark.parametrize("material", [
    b"not a key at all",
    b"ssh-rsa AAAAnotbase64!!",
    b"",
    ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
    openssh(rsa.RSAPublicNumbers(65537, (1 << 511) | 0xABCDEF1).public_key()).encode(),
    rsa_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()),
], ids=["text", "bad-base64", "empty", "ecdsa", "rsa-512", "private-key"])
def test_import_invalid_key(ec2, material):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.import_key_pair(KeyName=unique("bad"), PublicKeyMaterial=material)
    assert code_of(caught) == "InvalidKey.Format"


def test_import_duplicate_name_and_same_key(ec2):
    name = unique("impdup")
    public = rsa_key().public_key()
    ec2.import_key_pair(KeyName=name, PublicKeyMaterial=openssh(public).encode())
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=openssh(rsa_key().public_key()).encode())
    assert code_of(caught) == "InvalidKeyPair.Duplicate"
    # CloudStack takes a public key once per account: the second name is refused, naming the first.
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.import_key_pair(KeyName=unique("impdup2"), PublicKeyMaterial=openssh(public).encode())
    assert code_of(caught) == "InvalidKeyPair.Duplicate"
    assert f"'{name}'" in caught.value.response["Error"]["Message"]


def test_import_dry_run(ec2):
    name = unique("impdry")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=openssh(rsa_key().public_key()).encode(), DryRun=True)
    assert code_of(caught) == "DryRunOperation"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=b"junk", DryRun=True)
    assert code_of(caught) == "InvalidKey.Format"
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"] == []


# --- DeleteKeyPair -------------------------------------------------------------------------

def test_delete_by_name_and_by_id(ec2):
    by_name, by_id = ec2.create_key_pair(KeyName=unique("del")), ec2.create_key_pair(KeyName=unique("del"))
    answer = ec2.delete_key_pair(KeyName=by_name["KeyName"])
    assert (answer["Return"], answer["KeyPairId"]) == (True, by_name["KeyPairId"])
    answer = ec2.delete_key_pair(KeyPairId=by_id["KeyPairId"])
    assert (answer["Return"], answer["KeyPairId"]) == (True, by_id["KeyPairId"])
    for created in (by_name, by_id):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            ec2.describe_key_pairs(KeyNames=[created["KeyName"]])
        assert code_of(caught) == "InvalidKeyPair.NotFound"


def test_delete_missing_name_succeeds(ec2):
    answer = ec2.delete_key_pair(KeyName=unique("never-existed"))
    assert answer["Return"] is True and "KeyPairId" not in answer


@pytest.mark.parametrize("key_pair_id", ["key-0123456789abcdef0", "key-nothex", "i-0123456789abcdef0"])
def test_delete_missing_id_is_not_found(ec2, key_pair_id):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.delete_key_pair(KeyPairId=key_pair_id)
    assert code_of(caught) == "InvalidKeyPair.NotFound"
    assert caught.value.response["Error"]["Message"] == f"The key pair '{key_pair_id}' does not exist"


def test_delete_needs_a_name_or_id(ec2):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.delete_key_pair()
    assert code_of(caught) == "MissingParameter"


def test_delete_dry_run_keeps_the_key(ec2):
    created = ec2.create_key_pair(KeyName=unique("deldry"))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.delete_key_pair(KeyName=created["KeyName"], DryRun=True)
    assert code_of(caught) == "DryRunOperation"
    assert one(ec2, created["KeyName"])["KeyPairId"] == created["KeyPairId"]


def test_recreated_name_gets_a_new_id_and_no_old_tags(ec2):
    name = unique("again")
    first = ec2.create_key_pair(KeyName=name, TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "gen", "Value": "1"}]}])
    ec2.delete_key_pair(KeyName=name)
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [first["KeyPairId"]]}])["Tags"] == []
    second = ec2.create_key_pair(KeyName=name)
    assert second["KeyPairId"] != first["KeyPairId"]
    assert one(ec2, name)["Tags"] == []


# --- DescribeKeyPairs ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def described_set(ec2):
    """Three key pairs of known types and tags."""
    rsa_pair = ec2.create_key_pair(KeyName=unique("set-rsa"), TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "env", "Value": "prod"}]}])
    ed_pair = ec2.create_key_pair(KeyName=unique("set-ed"), KeyType="ed25519", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "env", "Value": "dev"}, {"Key": "owner", "Value": "ann"}]}])
    imported = ec2.import_key_pair(KeyName=unique("set-imp"),
                                   PublicKeyMaterial=openssh(rsa_key().public_key()).encode())
    return {"rsa": rsa_pair, "ed": ed_pair, "imported": imported}


def names_for(ec2, **params) -> set[str]:
    return {k["KeyName"] for k in ec2.describe_key_pairs(**params)["KeyPairs"]}


def test_describe_all_is_sorted_and_complete(ec2, described_set):
    listed = ec2.describe_key_pairs()["KeyPairs"]
    names = [k["KeyName"] for k in listed]
    assert names == sorted(names)
    assert {k["KeyName"] for k in described_set.values()} <= set(names)


def test_describe_by_names_and_ids(ec2, described_set):
    rsa_pair, ed_pair = described_set["rsa"], described_set["ed"]
    assert names_for(ec2, KeyNames=[rsa_pair["KeyName"], ed_pair["KeyName"]]) == {rsa_pair["KeyName"],
                                                                                   ed_pair["KeyName"]}
    assert names_for(ec2, KeyPairIds=[ed_pair["KeyPairId"]]) == {ed_pair["KeyName"]}
    assert names_for(ec2, KeyNames=[rsa_pair["KeyName"]], KeyPairIds=[rsa_pair["KeyPairId"]]) == {rsa_pair["KeyName"]}


def test_describe_missing_names_and_ids(ec2, described_set):
    missing = unique("missing")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.describe_key_pairs(KeyNames=[described_set["rsa"]["KeyName"], missing])
    assert code_of(caught) == "InvalidKeyPair.NotFound"
    assert caught.value.response["Error"]["Message"] == f"The key pair '{missing}' does not exist"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.describe_key_pairs(KeyPairIds=["key-0123456789abcdef0"])
    assert code_of(caught) == "InvalidKeyPair.NotFound"


def test_describe_filters(ec2, described_set):
    rsa_pair, ed_pair, imported = described_set["rsa"], described_set["ed"], described_set["imported"]
    mine = {k["KeyName"] for k in described_set.values()}

    def filtered(name: str, *values: str) -> set[str]:
        return names_for(ec2, Filters=[{"Name": name, "Values": list(values)}]) & mine

    assert filtered("key-name", rsa_pair["KeyName"]) == {rsa_pair["KeyName"]}
    assert filtered("key-name", "set-*") == mine
    assert filtered("key-pair-id", ed_pair["KeyPairId"], imported["KeyPairId"]) == {ed_pair["KeyName"],
                                                                                    imported["KeyName"]}
    assert filtered("fingerprint", imported["KeyFingerprint"]) == {imported["KeyName"]}
    assert filtered("key-type", "ed25519") == {ed_pair["KeyName"]}
    assert filtered("key-type", "rsa") == {rsa_pair["KeyName"], imported["KeyName"]}
    assert filtered("tag:env", "prod") == {rsa_pair["KeyName"]}
    assert filtered("tag:env", "*") == {rsa_pair["KeyName"], ed_pair["KeyName"]}
    assert filtered("tag-key", "owner") == {ed_pair["KeyName"]}
    assert filtered("tag-value", "dev", "prod") == {rsa_pair["KeyName"], ed_pair["KeyName"]}


def test_describe_unknown_filter(ec2):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.describe_key_pairs(Filters=[{"Name": "key-colour", "Values": ["blue"]}])
    assert code_of(caught) == "InvalidParameterValue"


def test_describe_dry_run(ec2):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.describe_key_pairs(DryRun=True)
    assert code_of(caught) == "DryRunOperation"


def test_key_pair_made_in_cloudstack(bridge, keys, ec2):
    """A key pair the bridge never saw: CloudStack's fingerprint; type, key and time unknown."""
    name = unique("native")
    made = cloudstack(bridge, keys, "createSSHKeyPair", name=name)["keypair"]
    described = one(ec2, name, IncludePublicKey=True)
    assert described["KeyFingerprint"] == made["fingerprint"]
    assert not {"KeyType", "CreateTime", "PublicKey"} & set(described)
    assert ec2.delete_key_pair(KeyPairId=described["KeyPairId"])["KeyPairId"] == described["KeyPairId"]
    assert cloudstack(bridge, keys, "listSSHKeyPairs", name=name) == {}


def test_key_replaced_behind_the_bridge_shows_cloudstack_details(bridge, keys, ec2):
    """A key pair deleted and registered again in CloudStack is a new key pair: a new id, and
    none of the old key's stored details."""
    name = unique("swapped")
    created = ec2.create_key_pair(KeyName=name)
    cloudstack(bridge, keys, "deleteSSHKeyPair", name=name)
    remade = cloudstack(bridge, keys, "registerSSHKeyPair", name=name, publickey=openssh(rsa_key().public_key()))
    described = one(ec2, name)
    assert described["KeyPairId"] != created["KeyPairId"]
    assert described["KeyFingerprint"] == remade["keypair"]["fingerprint"]


# --- accounts ------------------------------------------------------------------------------

def test_accounts_do_not_see_each_others_key_pairs(ec2, stranger):
    name = unique("shared-name")
    mine = ec2.create_key_pair(KeyName=name)
    theirs = stranger.create_key_pair(KeyName=name)  # names are per account, as on AWS
    assert mine["KeyPairId"] != theirs["KeyPairId"]
    assert one(ec2, name)["KeyPairId"] == mine["KeyPairId"]
    assert one(stranger, name)["KeyPairId"] == theirs["KeyPairId"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        stranger.describe_key_pairs(KeyPairIds=[mine["KeyPairId"]])
    assert code_of(caught) == "InvalidKeyPair.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        stranger.delete_key_pair(KeyPairId=mine["KeyPairId"])
    assert code_of(caught) == "InvalidKeyPair.NotFound"
    stranger.delete_key_pair(KeyName=name)
    assert one(ec2, name)["KeyPairId"] == mine["KeyPairId"]
    assert mine["KeyName"] not in names_for(stranger)


# --- boto 2 --------------------------------------------------------------------------------

class SigV2Connection(boto.ec2.connection.EC2Connection):
    """boto 2.49 asks for SigV4 on EC2; the 'ec2' capability makes it sign with SigV2."""

    def _required_auth_capability(self):
        return ["ec2"]


def test_boto2_key_pairs(bridge, keys):
    port = int(bridge.url.rsplit(":", 1)[1].rstrip("/"))
    conn = SigV2Connection(aws_access_key_id=keys[0], aws_secret_access_key=keys[1], is_secure=False, port=port,
                           region=RegionInfo(name=REGION, endpoint="127.0.0.1"))
    created = conn.create_key_pair(unique("boto2"))
    assert created.fingerprint == expected_created_rsa(created.material)
    public = rsa_key().public_key()
    imported = conn.import_key_pair(unique("boto2-imp"), openssh(public).encode())
    assert imported.fingerprint == expected_imported_rsa(public)
    listed = {k.name: k.fingerprint for k in conn.get_all_key_pairs(keynames=[created.name, imported.name])}
    assert listed == {created.name: created.fingerprint, imported.name: imported.fingerprint}
    assert conn.delete_key_pair(created.name) is True
    assert [k.name for k in conn.get_all_key_pairs(filters={"key-name": "boto2-*"})] == [imported.name]
