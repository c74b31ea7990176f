// Steering answers a request only in the requester's own inbox. NATS checks a publisher's
// permission on the subject it publishes to, never on the reply subject its request carries, and
// a reply is a publish by steering to that subject: a request naming `$JS.API.STREAM.PURGE.GTLOG`
// as its reply once made steering purge its own event log. Every request handler calls this
// before it parses or acts on anything, so a hostile request changes no state and gets no answer.
import type { Msg } from "@nats-io/transport-node";
import { type Identity, connectionName, inboxPrefix, isOwnInbox } from "../../protocol/identity.ts";
import type { Logger } from "../../protocol/log.ts";

/**
 * True when `msg.reply` lies below the requester's inbox prefix. Otherwise logs a security event
 * at warn (identity, subject and reply subject) and returns false: the caller drops the request.
 */
export function replyAllowed(
  msg: Pick<Msg, "subject" | "reply">,
  requester: Identity,
  logger: Logger,
): boolean {
  if (isOwnInbox(requester, msg.reply)) return true;
  logger.warn("security: request dropped, its reply subject is not the requester's inbox", {
    identity: connectionName(requester),
    subject: msg.subject,
    reply: msg.reply ?? "(none)",
    expected: `${inboxPrefix(requester)}.>`,
  });
  return false;
}
