// A customer's journey through the TypeScript client generated from docs/openapi.yaml
// (openapi-typescript types + openapi-fetch), compiled with strict tsc and run against the
// local stack by tests/tests/api/clients.rs. Types come from the generated file; nothing is cast.
import createClient from "openapi-fetch";
import type { paths } from "./shop-api.js";

// Node's environment, declared here rather than pulling in @types/node for one property.
declare const process: { env: Record<string, string | undefined> };

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(what);
}

const client = createClient<paths>({ baseUrl: setting("SHOP_API_URL") });
const productId = setting("SHOP_PRODUCT_ID");
const email = `ts-client-${Date.now()}-${Math.random().toString(36).slice(2)}@example.org`;
const password = crypto.randomUUID(); // a fresh account's own

const registered = await client.POST("/api/v1/auth/register", {
  params: { header: { "Idempotency-Key": crypto.randomUUID() } },
  body: { email, password },
});
check(registered.response.status === 202 && registered.data !== undefined, `register: ${registered.response.status}`);
check(registered.data.status === "accepted", "registration is accepted, the rest is in the email");

// The emailed link, as moto's SES recorded it (what `cargo xtask mail` shows a developer): its
// fragment is the token the shop's verification page posts.
interface MotoData { ses?: { Message?: { body?: string; destinations?: { ToAddresses?: string[] } }[] } }
async function emailedToken(to: string): Promise<string> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const data: MotoData = await (await fetch(`${setting("SHOP_MOTO_ENDPOINT")}/moto-api/data.json`)).json();
    for (const message of data.ses?.Message ?? []) {
      const token = message.body?.split("#token=")[1]?.split(/\s/)[0];
      if (message.destinations?.ToAddresses?.includes(to) && token !== undefined) return token;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`no verification email to ${to}`);
}
const verified = await client.POST("/api/v1/auth/verify-email", { body: { token: await emailedToken(email) } });
check(verified.data?.status === "verified", `verify: ${verified.response.status}`);

const signedIn = await client.POST("/api/v1/auth/login", { body: { email, password } });
check(signedIn.data !== undefined, `login: ${signedIn.response.status}`);
const headers = { Authorization: `Bearer ${signedIn.data.token}` };

// Browse: a page of the catalogue (it may be cached for a few seconds, so the product made for
// this journey is then read by its id).
const page = await client.GET("/api/v1/products", { params: { query: { limit: 10 } }, headers });
check(page.data !== undefined && page.data.data.length > 0, `products: ${page.response.status}`);
const one = await client.GET("/api/v1/products/{id}", { params: { path: { id: productId } }, headers });
check(one.data !== undefined, `product: ${one.response.status}`);
const listed = one.data;

const key = crypto.randomUUID();
const order = { lines: [{ product_id: listed.id, quantity: 1 }] };
const placed = await client.POST("/api/v1/orders", { params: { header: { "Idempotency-Key": key } }, body: order, headers });
check(placed.data !== undefined && placed.response.status === 201, `order: ${placed.response.status}`);
const replay = await client.POST("/api/v1/orders", { params: { header: { "Idempotency-Key": key } }, body: order, headers });
check(replay.data?.id === placed.data.id, "the same key replays the same order");
check(replay.response.headers.get("Idempotent-Replayed") === "true", "the replay says so");

const read = await client.GET("/api/v1/orders/{id}", { params: { path: { id: placed.data.id } }, headers });
check(read.data !== undefined, `read back: ${read.response.status}`);
const total: number = read.data.total.amount_minor;
check(total === listed.price.amount_minor, `total ${total} is one unit's price ${listed.price.amount_minor}`);
console.log(`typescript client: order ${read.data.id} ${read.data.status}, ${total} ${read.data.total.currency}`);
