#!/usr/bin/env python3
"""How much each index entry weighs, with every attribute projected (ALL)
and with the projections infra/data.yaml declares (INCLUDE).

Items are built the way shared/adapters/src/dynamo/*.rs writes them, with
realistic values; sizes follow DynamoDB's rules (attribute name + value;
strings in UTF-8 bytes, numbers about one byte per two digits plus one,
booleans one byte). An index entry holds the table's keys, the index's keys
and the projected attributes; storage adds 100 bytes of overhead per entry,
and an index write costs one write unit per started KB of the entry.

Run: .tools/venv/bin/python xtask/checks/gsi_sizes.py   (docs/performance.md points here for the index entry sizes)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ULID = "01JQ3Z8W5K7M2N4P6R8T0V2X4Y"
STAMP = "2026-03-14T09:26:53.589793Z"


def size(value) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        digits = len(str(abs(value)).strip("0")) or 1
        return math.ceil(digits / 2) + 1
    return len(str(value).encode())


def item_size(item: dict, names) -> int:
    return sum(len(k.encode()) + size(v) for k, v in item.items() if k in names)


def user() -> dict:
    return {
        "pk": f"USER#{ULID}", "sk": "USER", "gsi1pk": "USERS", "gsi1sk": ULID,
        "id": ULID, "email": "jane.doe@example.com",
        "password_hash": "$argon2id$v=19$m=12288,t=3,p=1$" + "S" * 22 + "$" + "H" * 43,
        "role": "user", "disabled": False, "created_at": STAMP, "updated_at": STAMP, "version": 3,
    }


def product() -> dict:
    return {
        "pk": f"PRODUCT#{ULID}", "sk": "PRODUCT", "gsi1pk": "PRODUCTS#active", "gsi1sk": ULID,
        "id": ULID, "sku": "TEE-BLK-M", "name": "Black tee, medium",
        "description": "Organic cotton t-shirt, black, medium. " * 3,
        "price_minor": 2500, "currency": "EUR", "stock": 120, "active": True,
        "created_at": STAMP, "updated_at": STAMP, "version": 4,
    }


def order(lines: int) -> dict:
    owner, status = ULID, "confirmed"
    stored = [
        {"product_id": ULID, "sku": "TEE-BLK-M", "name": "Black tee, medium", "quantity": 2, "unit_price_minor": 2500}
        for _ in range(lines)
    ]
    return {
        "pk": f"ORDER#{ULID}", "sk": "ORDER",
        "gsi1pk": f"ORDERS#OWNER#{owner}", "gsi1sk": ULID,
        "gsi2pk": f"ORDERS#STATUS#{status}", "gsi2sk": ULID,
        "gsi3pk": f"ORDERS#OWNER#{owner}#STATUS#{status}", "gsi3sk": ULID,
        "gsi4pk": "ORDERS", "gsi4sk": ULID,
        "id": ULID, "owner": owner, "lines": json.dumps(stored, separators=(",", ":")),
        "total_minor": 5000 * lines, "currency": "EUR", "status": status,
        "created_at": STAMP, "updated_at": STAMP, "version": 2,
    }


def outbox() -> dict:
    body = json.dumps({
        "specversion": "1.0", "id": ULID, "source": "shop/place-order", "type": "shop.order.placed",
        "time": STAMP, "datacontenttype": "application/json", "correlationid": ULID,
        "data": {"order_id": ULID, "owner": ULID, "lines": [{"product_id": ULID, "quantity": 2}]},
    }, separators=(",", ":"))
    return {"pk": f"OUTBOX#{ULID}", "sk": "OUTBOX", "gsi1pk": "OUTBOX", "gsi1sk": ULID,
            "queue": "order-placed", "created_at": 1773480413, "body": body}


def projections() -> dict[str, list[str]]:
    from samcli.yamlhelper import yaml_parse

    table = yaml_parse((ROOT / "infra/data.yaml").read_text())["Resources"]["Table"]["Properties"]
    return {i["IndexName"]: i["Projection"].get("NonKeyAttributes", []) for i in table["GlobalSecondaryIndexes"]}


def main() -> None:
    include = projections()
    cases = [("user", user(), ["gsi1"]), ("product", product(), ["gsi1"]), ("outbox record", outbox(), ["gsi1"])]
    cases += [(f"order, {n} line{'s' if n > 1 else ''}", order(n), ["gsi1", "gsi2", "gsi3", "gsi4"]) for n in (1, 4, 5, 6, 8)]
    print("| item | indexes | entry bytes, ALL | entry bytes, INCLUDE | index write units per write, ALL -> INCLUDE |")
    print("|---|---|---:|---:|---|")
    for name, item, indexes in cases:
        all_bytes = inc_bytes = 0
        all_wru = inc_wru = 0
        for index in indexes:
            keys = {"pk", "sk", f"{index}pk", f"{index}sk"}
            a = item_size(item, item.keys())
            i = item_size(item, keys | set(include[index]))
            all_bytes += a + 100
            inc_bytes += i + 100
            all_wru += math.ceil(a / 1024)
            inc_wru += math.ceil(i / 1024)
        n = len(indexes)
        print(f"| {name} | {n} | {all_bytes // n} | {inc_bytes // n} | {all_wru} -> {inc_wru} |")


if __name__ == "__main__":
    main()
