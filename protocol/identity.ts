// NATS identities and their least-privilege permission templates (docs/security.md, spec §3).
// Every connection is an nkey user of one of three roles. A name is exactly one subject token, so
// it can never widen a permission: `alpha.*` or `>` as a site name would grant other sites' jobs.
import { z } from "zod";
import { describeZodError, unreachable, ValidationError } from "./errors.ts";
import { STREAM_JOBS, subjects } from "./subjects.ts";

const USER_INBOXES = "_INBOX.user";
const SITE_INBOXES = "_INBOX.site";

export const IDENTITY_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const NAME_RULE =
  "1–32 characters: lowercase letters, digits, '_' and '-', starting with a letter or digit (one NATS subject token; no '.', '*', '>', spaces or uppercase)";

export const IdentityName = z
  .string()
  .regex(IDENTITY_NAME_RE, { message: `invalid name: must be ${NAME_RULE}` });
export type IdentityName = z.infer<typeof IdentityName>;

/** Validates one site, agent or user name; `field` names it in the message ("site", "agent", "user"). */
export function validateIdentityName(value: unknown, field = "name"): string {
  if (typeof value === "string" && IDENTITY_NAME_RE.test(value)) return value;
  throw new ValidationError(
    "INVALID_NAME",
    `${field} ${JSON.stringify(value)} is not a valid name: use ${NAME_RULE}`,
  );
}

export const SteeringIdentity = z.object({ role: z.literal("steering") }).strict();
/**
 * Steering's second identity: the connection that serves requests (gt.api, gt.hb). It may publish
 * only into the requesters' inboxes, so a request whose reply subject names a JetStream API or a
 * stream subject cannot make steering act there (it serves no JetStream work; `steering` does).
 */
export const SteeringApiIdentity = z.object({ role: z.literal("steering-api") }).strict();
export const AgentIdentity = z
  .object({ role: z.literal("agent"), site: IdentityName, agent: IdentityName })
  .strict();
export const UserIdentity = z.object({ role: z.literal("user"), user: IdentityName }).strict();
export const Identity = z.discriminatedUnion("role", [
  SteeringIdentity,
  SteeringApiIdentity,
  AgentIdentity,
  UserIdentity,
]);
export type SteeringIdentity = z.infer<typeof SteeringIdentity>;
export type SteeringApiIdentity = z.infer<typeof SteeringApiIdentity>;
export type AgentIdentity = z.infer<typeof AgentIdentity>;
export type UserIdentity = z.infer<typeof UserIdentity>;
export type Identity = z.infer<typeof Identity>;

/** Parses an identity; a bad name is an INVALID_NAME ValidationError naming the field and the rule. */
export function parseIdentity(value: unknown): Identity {
  const r = Identity.safeParse(value);
  if (r.success) return r.data;
  const badName = r.error.issues.some((i) => i.path.length > 0 && i.path[0] !== "role");
  throw new ValidationError(
    badName ? "INVALID_NAME" : "INVALID_ARGUMENT",
    `invalid identity ${JSON.stringify(value)}:\n${describeZodError(r.error, "identity")}`,
  );
}

export const steeringIdentity = (): SteeringIdentity => ({ role: "steering" });
export const steeringApiIdentity = (): SteeringApiIdentity => ({ role: "steering-api" });
export const agentIdentity = (site: string, agent: string): AgentIdentity => ({
  role: "agent",
  site: validateIdentityName(site, "site"),
  agent: validateIdentityName(agent, "agent"),
});
export const userIdentity = (user: string): UserIdentity => ({
  role: "user",
  user: validateIdentityName(user, "user"),
});

/**
 * A stable, unambiguous id usable as a file name: `steering`, `agent-<site>.<agent>`, `user-<user>`.
 * Names never contain '.', so the site/agent split is unambiguous even with '-' in names.
 */
export function identityId(identity: Identity): string {
  switch (identity.role) {
    case "steering":
      return "steering";
    case "steering-api":
      return "steering-api";
    case "agent":
      return `agent-${identity.site}.${identity.agent}`;
    case "user":
      return `user-${identity.user}`;

    default:
      return unreachable(identity, "identity");
  }
}

/** Human form for messages and the NATS connection name (the server log shows it on every violation). */
export function connectionName(identity: Identity): string {
  switch (identity.role) {
    case "steering":
      return "steering";
    case "steering-api":
      return "steering-api";
    case "agent":
      return `agent:${identity.site}:${identity.agent}`;
    case "user":
      return `user:${identity.user}`;

    default:
      return unreachable(identity, "identity");
  }
}

export function sameIdentity(a: Identity, b: Identity): boolean {
  return identityId(a) === identityId(b);
}

/**
 * The identity's own inbox prefix. Request replies and JetStream pull replies arrive below it; the
 * subscribe permission is `<prefix>.>`, so nobody else can read them (granting `_INBOX.>` would let
 * every user read everyone's replies).
 */
export function inboxPrefix(identity: Identity): string {
  switch (identity.role) {
    case "steering":
      return "_INBOX.steering";
    case "steering-api":
      return "_INBOX.steering-api";
    case "agent":
      return `${SITE_INBOXES}.${identity.site}.${identity.agent}`;
    case "user":
      return `${USER_INBOXES}.${identity.user}`;

    default:
      return unreachable(identity, "identity");
  }
}

/**
 * Whether `reply` lies below the identity's own inbox prefix: the only place steering answers a
 * request (a reply is a publish to whatever subject the requester set). At least one token after
 * the prefix, every token non-empty and free of wildcards and whitespace.
 */
export function isOwnInbox(identity: Identity, reply: string | undefined): boolean {
  const prefix = `${inboxPrefix(identity)}.`;
  if (reply === undefined || !reply.startsWith(prefix)) return false;
  return reply
    .slice(prefix.length)
    .split(".")
    .every((t) => t !== "" && !/[*>\s]/.test(t));
}

export const Permissions = z.object({
  publish: z.object({ allow: z.array(z.string()) }),
  subscribe: z.object({ allow: z.array(z.string()) }),
});
export type Permissions = z.infer<typeof Permissions>;

/**
 * The exact allow lists of spec §3. Each agent entry is needed by one step (removing any one breaks
 * it): consumer info (consumers.get, and consume() after a reconnect), pull requests, acks of the
 * site's consumer (ack/nak/working/term: a site is the trust boundary), the agent's own results
 * and heartbeat subjects. Steering is trusted and manages JetStream: everything. Steering's
 * request server (steering-api) subscribes to the request subjects and publishes only into the
 * requesters' inboxes: NATS checks a publisher's subject, never the reply subject a request
 * carries, so a reply is a publish wherever the requester chose. Without this list a user's
 * request with the reply subject `$JS.API.STREAM.PURGE.GTLOG` made steering purge its event log.
 * Its stop requests and watch events go out on the `steering` connection, so it needs neither
 * `gt.ctl.>` nor `gt.events.>`; it makes no request of its own, so it needs no inbox.
 */
export function permissionsFor(identity: Identity): Permissions {
  switch (identity.role) {
    case "steering":
      return { publish: { allow: [">"] }, subscribe: { allow: [">"] } };
    case "steering-api":
      return {
        publish: { allow: [`${USER_INBOXES}.*.>`, `${SITE_INBOXES}.*.*.>`] },
        subscribe: { allow: [subjects.apiAll, subjects.heartbeatAll] },
      };
    case "agent": {
      const { site, agent } = identity;
      return {
        publish: {
          allow: [
            `$JS.API.CONSUMER.INFO.${STREAM_JOBS}.${site}`,
            `$JS.API.CONSUMER.MSG.NEXT.${STREAM_JOBS}.${site}`,
            `$JS.ACK.${STREAM_JOBS}.${site}.>`,
            subjects.results(site, agent, ">"),
            subjects.heartbeat(site, agent),
          ],
        },
        subscribe: { allow: [`${inboxPrefix(identity)}.>`, subjects.control(site, ">")] },
      };
    }
    case "user": {
      const { user } = identity;
      return {
        publish: { allow: [subjects.api(user, ">")] },
        subscribe: { allow: [`${inboxPrefix(identity)}.>`, subjects.events(user, ">")] },
      };
    }

    default:
      return unreachable(identity, "identity");
  }
}
