import type { Express } from 'express';
import { IncomingMessage, ServerResponse, createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * An HTTP server for `app` whose requests and responses are created with the app's own
 * prototypes (`app.request`, `app.response`) instead of node's.
 *
 * express gives each request and response its methods by swapping their prototype
 * (`Object.setPrototypeOf(req, app.request)` in `app.handle`), and V8 pays for the swap on
 * every later access to both objects, in node's HTTP code as much as in express's. Measured
 * on 2 cores (bench/gateway-load.ts, CPU per request): one route on bare node:http ~110 µs,
 * the same route in express ~210 µs, in express on this server ~125 µs — the swap is then a
 * no-op. (Building the objects with `Reflect.construct(…, new.target)` instead of calling
 * node's constructors on `this` was as slow as the swap.)
 */
export function appServer(app: Express): Server {
  // node's IncomingMessage and ServerResponse are plain constructor functions: called on
  // `this` (already of the app's prototype, made by `new`), they build it in place.
  const incoming = IncomingMessage as unknown as (this: IncomingMessage, socket: Socket) => void;
  const response = ServerResponse as unknown as (this: ServerResponse, req: IncomingMessage, options: unknown) => void;
  function AppRequest(this: IncomingMessage, socket: Socket): void {
    incoming.call(this, socket);
  }
  AppRequest.prototype = app.request;
  function AppResponse(this: ServerResponse, req: IncomingMessage, options: unknown): void {
    response.call(this, req, options);
  }
  AppResponse.prototype = app.response;
  return createServer(
    { IncomingMessage: AppRequest as unknown as typeof IncomingMessage, ServerResponse: AppResponse as unknown as typeof ServerResponse },
    app,
  );
}
