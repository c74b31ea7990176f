// A cost in nats.js 3.3.1 (pinned exactly in package.json): when a request is answered,
// RequestOne.resolver() settles its promise and then calls cancel(), which builds a
// RequestError("cancelled") only to reject that already settled promise (a no-op). Building an
// Error captures a stack trace; with one request per job publish, claim, result and log append,
// that was about 5 % of steering's CPU at a few hundred evaluations/s (docs/benchmarks.md).
// The patch skips building the error for an answered request and keeps every other path (a
// timeout, a real cancel with its error, a closed connection) as the library has it.
// If a later nats.js changes the shape of RequestOne, the patch is not applied and
// patchNatsRequests() says so (its unit test fails); behaviour stays the library's own. Steering
// applies it before it connects (steering/shell/service.ts); the other processes make few requests.
import { RequestOne } from "@nats-io/nats-core/internal";

let applied: boolean | null = null;

/** Applies the patch once per process; true if it is in effect. */
export function patchNatsRequests(): boolean {
  if (applied !== null) return applied;
  const proto = RequestOne.prototype as Partial<RequestOne>;
  const resolver = proto.resolver;
  const cancel = proto.cancel;
  if (typeof resolver !== "function" || typeof cancel !== "function") return (applied = false);
  const answered = new WeakSet<RequestOne>();
  proto.resolver = function (this: RequestOne, err, msg) {
    answered.add(this);
    resolver.call(this, err, msg);
  };
  proto.cancel = function (this: RequestOne, err) {
    if (err === undefined && answered.has(this)) {
      // What the library's cancel() does, less the error for the settled promise.
      this.timer?.cancel();
      this.mux.cancel(this);
      return;
    }
    cancel.call(this, err);
  };
  return (applied = true);
}
