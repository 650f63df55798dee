"""``ec2bridge keys add|list|disable|enable|delete|rotate``: the operator's key administration."""

from __future__ import annotations

import argparse
import sys

from ec2bridge.config import Config
from ec2bridge.stores import default_database_url, open_database
from ec2bridge.stores.sqlite import SqliteKeyStore
from signing.keystore import (Credential, KeyExists, KeyNotFound, SecretBox, load_master_key,
                              new_access_key, new_secret_key)


def open_key_store(config: Config) -> SqliteKeyStore:
    database = open_database(config.database_url or default_database_url(config.data_dir))
    return SqliteKeyStore(database, SecretBox(load_master_key(config.data_dir)))


async def run_keys_command(config: Config, args: argparse.Namespace) -> int:
    keys = open_key_store(config)
    try:
        return await _COMMANDS[args.keys_command](keys, args)
    except KeyNotFound as error:
        print(f"ec2bridge: no access key {error.args[0]}", file=sys.stderr)
        return 1
    except KeyExists as error:
        print(f"ec2bridge: access key {error.args[0]} already exists", file=sys.stderr)
        return 1


async def _add(keys: SqliteKeyStore, args: argparse.Namespace) -> int:
    access_key = args.access_key or new_access_key()
    secret_key = args.secret_key or new_secret_key()
    if bool(args.cloudstack_api_key) != bool(args.cloudstack_secret_key):
        print("ec2bridge: give both --cloudstack-api-key and --cloudstack-secret-key, or neither", file=sys.stderr)
        return 2
    await keys.add(Credential(access_key=access_key, secret_key=secret_key,
                              cloudstack_api_key=args.cloudstack_api_key or access_key,
                              cloudstack_secret_key=args.cloudstack_secret_key or secret_key))
    print(f"added access key {access_key}")
    if not args.secret_key:
        print(f"secret key (shown once): {secret_key}")
    return 0


async def _list(keys: SqliteKeyStore, args: argparse.Namespace) -> int:
    print(f"{'ACCESS KEY':<24} {'STATE':<9} {'SOURCE':<11} {'CREATED':<26} CLOUDSTACK API KEY")
    for info in await keys.list():
        state = "enabled" if info.enabled else "disabled"
        print(f"{info.access_key:<24} {state:<9} {info.source:<11} {info.created_at.isoformat():<26} {info.cloudstack_api_key}")
    return 0


async def _set_state(keys: SqliteKeyStore, args: argparse.Namespace) -> int:
    await keys.set_enabled(args.access_key, args.keys_command == "enable")
    print(f"{args.keys_command}d access key {args.access_key}")
    return 0


async def _delete(keys: SqliteKeyStore, args: argparse.Namespace) -> int:
    await keys.delete(args.access_key)
    print(f"deleted access key {args.access_key}")
    return 0


async def _rotate(keys: SqliteKeyStore, args: argparse.Namespace) -> int:
    secret_key = args.secret_key or new_secret_key()
    await keys.set_secret(args.access_key, secret_key)
    print(f"rotated the secret of {args.access_key}")
    if not args.secret_key:
        print(f"new secret key (shown once): {secret_key}")
    return 0


_COMMANDS = {"add": _add, "list": _list, "enable": _set_state, "disable": _set_state,
             "delete": _delete, "rotate": _rotate}
