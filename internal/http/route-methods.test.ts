import fastify from "fastify";
import { describe, expect, it } from "vitest";
import { RouteMethods, methodNotAllowed, trackRouteMethods } from "./route-methods.js";

describe("RouteMethods", () => {
  it("matches static, parametric and wildcard routes, and leaves unknown paths out", () => {
    const routes = new RouteMethods();
    routes.add("/rockets", ["GET", "HEAD"]);
    routes.add("/rockets/:channel", "GET");
    routes.add("/rockets/summary", "GET");
    routes.add("/messages", "POST");
    routes.add("/docs/*", "GET");
    routes.add("/a.b", "GET");
    expect(routes.allowed("/rockets?limit=5")).toEqual(["GET", "HEAD"]);
    expect(routes.allowed("/rockets/abc")).toEqual(["GET"]);
    expect(routes.allowed("/messages")).toEqual(["POST"]);
    expect(routes.allowed("/docs/static/index.html")).toEqual(["GET"]);
    expect(routes.allowed("/rockets/abc/def")).toEqual([]);
    expect(routes.allowed("/nothing")).toEqual([]);
    // A dot in a route is a dot, not any character.
    expect(routes.allowed("/aXb")).toEqual([]);
  });

  it("learns every route of an app as it is registered, HEAD included", async () => {
    const app = fastify();
    const routes = trackRouteMethods(app);
    app.get("/things/:id", async () => "x");
    app.route({ method: ["PUT", "DELETE"], url: "/things/:id", handler: async () => "y" });
    await app.ready();
    expect(routes.allowed("/things/7")).toEqual(["DELETE", "GET", "HEAD", "PUT"]);
    expect(methodNotAllowed(routes, { method: "POST", url: "/things/7?x=1" })).toEqual({
      allow: "DELETE, GET, HEAD, PUT",
      problem: {
        type: "urn:rockets:problem:method-not-allowed",
        title: "Method not allowed",
        status: 405,
        detail: "/things/7 does not take POST; it takes DELETE, GET, HEAD, PUT",
      },
    });
    expect(methodNotAllowed(routes, { method: "POST", url: "/other" })).toBeUndefined();
    // A route that takes the method and found nothing (a missing file under a wildcard) is a 404, not a 405.
    expect(methodNotAllowed(routes, { method: "GET", url: "/things/7" })).toBeUndefined();
  });
});
