"""A customer's journey through the Python client generated from docs/openapi.yaml
(openapi-python-client), checked with `mypy --strict` and run against the local stack by
tests/tests/api/clients.rs."""

import json
import os
import time
import urllib.request
import uuid
from typing import Any

from shop_client import AuthenticatedClient, Client
from shop_client.api.auth import login, register, verify_email
from shop_client.api.orders import get_order, place_order
from shop_client.api.products import get_product, list_products
from shop_client.models import (
    Accepted,
    LoginCredentials,
    Order,
    OrderInput,
    OrderInputLinesItem,
    Product,
    ProductPage,
    Registration,
    Token,
    VerificationToken,
    Verified,
)


def emailed_token(to: str) -> str:
    """The token of the verification link moto's SES recorded for `to` (what `cargo xtask mail`
    shows a developer): the link's fragment, which the shop's verification page posts."""
    url = f"{os.environ['SHOP_MOTO_ENDPOINT']}/moto-api/data.json"
    for _ in range(300):
        with urllib.request.urlopen(url) as response:
            data: dict[str, Any] = json.load(response)
        for message in data.get("ses", {}).get("Message", []):
            body: str = message.get("body", "")
            if to in message.get("destinations", {}).get("ToAddresses", []) and "#token=" in body:
                return body.split("#token=", 1)[1].split()[0]
        time.sleep(0.3)
    raise AssertionError(f"no verification email to {to}")


def main() -> None:
    base_url = os.environ["SHOP_API_URL"]
    product_id = os.environ["SHOP_PRODUCT_ID"]
    email = f"py-client-{uuid.uuid4().hex}@example.org"
    password = uuid.uuid4().hex  # a fresh account's own
    guest = Client(base_url=base_url)

    registration = Registration(email=email, password=password)
    registered = register.sync_detailed(client=guest, body=registration, idempotency_key=str(uuid.uuid4()))
    assert registered.status_code == 202 and isinstance(registered.parsed, Accepted), registered.content

    verified = verify_email.sync_detailed(client=guest, body=VerificationToken(token=emailed_token(email)))
    assert isinstance(verified.parsed, Verified), verified.content

    signed_in = login.sync_detailed(client=guest, body=LoginCredentials(email=email, password=password))
    assert isinstance(signed_in.parsed, Token), signed_in.content
    customer = AuthenticatedClient(base_url=base_url, token=signed_in.parsed.token)

    # Browse: a page of the catalogue (it may be cached for a few seconds, so the product made for
    # this journey is then read by its id).
    page = list_products.sync_detailed(client=customer, limit=10)
    assert isinstance(page.parsed, ProductPage) and page.parsed.data, page.content
    one = get_product.sync_detailed(product_id, client=customer)
    assert isinstance(one.parsed, Product), one.content
    listed = one.parsed

    key = str(uuid.uuid4())
    order = OrderInput(lines=[OrderInputLinesItem(product_id=listed.id, quantity=1)])
    placed = place_order.sync_detailed(client=customer, body=order, idempotency_key=key)
    assert placed.status_code == 201 and isinstance(placed.parsed, Order), placed.content
    replay = place_order.sync_detailed(client=customer, body=order, idempotency_key=key)
    assert isinstance(replay.parsed, Order) and replay.parsed.id == placed.parsed.id, replay.content
    assert replay.headers.get("idempotent-replayed") == "true"

    read = get_order.sync_detailed(placed.parsed.id, client=customer)
    assert isinstance(read.parsed, Order), read.content
    total: int = read.parsed.total.amount_minor
    assert total == listed.price.amount_minor, (total, listed.price.amount_minor)
    print(f"python client: order {read.parsed.id} {read.parsed.status.value}, {total} {read.parsed.total.currency}")


if __name__ == "__main__":
    main()
