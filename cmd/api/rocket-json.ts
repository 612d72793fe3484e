// Rockets as JSON, serialized by the Rocket response schema once per rocket
// state and reused by every response that carries that state.
//
// A page of 100 rockets serialized per request costs far more than finding
// it in the view (measured ~30x), and a rocket's state is read many times
// between changes. The view replaces a rocket's object on every change, so a
// cache keyed by the object can never serve a stale state, and entries for
// replaced states are collected with them.

import type { FastifyReply } from "fastify";
import type { RocketView } from "../../internal/view/rocket-view.js";
import { RocketSchema } from "./schemas.js";

export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

export class RocketJson {
  private readonly cache = new WeakMap<RocketView, string>();
  private serialize: ((rocket: RocketView) => string) | undefined;

  /** The rocket's JSON, serialized with the Rocket schema (compiled once, through the reply's serializer compiler). */
  of(rocket: RocketView, reply: FastifyReply): string {
    let json = this.cache.get(rocket);
    if (json === undefined) {
      this.serialize ??= reply.compileSerializationSchema(RocketSchema) as unknown as (rocket: RocketView) => string;
      json = this.serialize(rocket);
      this.cache.set(rocket, json);
    }
    return json;
  }
}
