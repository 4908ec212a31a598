/**
 * Imported before `pg` (src/pg/connect.ts). node-pg decides at load time whether it runs in a Cloudflare Worker:
 * when there is no `navigator` (Node 20; Node 21+ defines one) it constructs a `Response`, which makes Node load its
 * whole fetch implementation (undici), ~50 ms of every CLI start. Node 21+'s own `navigator.userAgent` is
 * `Node.js/<major>`; on Node 20 the same is defined here, so node-pg answers from it.
 */
if (typeof (globalThis as { navigator?: unknown }).navigator === 'undefined') {
  Object.defineProperty(globalThis, 'navigator', {
    value: Object.freeze({ userAgent: `Node.js/${process.versions.node.split('.')[0]}` }),
    configurable: true,
    writable: true,
    enumerable: false,
  });
}
