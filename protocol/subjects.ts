// Every NATS subject, stream, consumer and bucket name in one place. The permission templates
// (protocol/identity.ts) and all services derive their names from here.

export const STREAM_JOBS = "JOBS"; // WorkQueue stream of evaluation jobs, one durable consumer per site
export const STREAM_RESULTS = "RESULTS"; // agent → steering: started, progress and final results
export const STREAM_LOG = "GTLOG"; // steering's durable event log, one subject per task
export const KV_STATE = "gtstate"; // steering's KV bucket (snapshots, indexes)
export const KV_LEADER = "gtleader"; // the steering leader's lease (bucket TTL = the lease's TTL)
export const LEADER_KEY = "steering"; // the one key of KV_LEADER
export const STEERING_RESULTS_CONSUMER = "steering";
export const STEERING_QUEUE = "steering"; // queue group of the API and agent-control subscriptions

export const subjects = {
  /** Jobs for one site: the site's durable consumer (named after the site) filters on this. */
  jobs: (site: string) => `gt.jobs.${site}`,
  jobsAll: "gt.jobs.*",
  /** One result-stream message of an agent about one job. */
  results: (site: string, agent: string, jobId: string) => `gt.results.${site}.${agent}.${jobId}`,
  resultsAll: "gt.results.>",
  /** Agent → steering control channel (core NATS request/reply): register, heartbeat, claim, presign. */
  heartbeat: (site: string, agent: string) => `gt.hb.${site}.${agent}`,
  heartbeatAll: "gt.hb.*.*",
  /** Steering → agents of a site (stop a job, drain). */
  control: (site: string, agent: string) => `gt.ctl.${site}.${agent}`,
  controlSite: (site: string) => `gt.ctl.${site}.all`,
  /** CLI request/reply: the user is token 2, taken from the subject, never from the payload. */
  api: (user: string, verb: string) => `gt.api.${user}.${verb}`,
  apiAll: "gt.api.*.>",
  /** Live task events for `phpo watch`. */
  events: (user: string, taskId: string) => `gt.events.${user}.${taskId}`,
  /** Steering's event log, one subject per task. */
  log: (taskId: string) => `gt.log.${taskId}`,
  logAll: "gt.log.>",
} as const;

/** Token 2 of an API subject `gt.api.<user>.<verb>`. */
export function parseApiSubject(subject: string): { user: string; verb: string } | null {
  const t = subject.split(".");
  if (t.length !== 4 || t[0] !== "gt" || t[1] !== "api" || !t[2] || !t[3]) return null;
  return { user: t[2], verb: t[3] };
}

/** Tokens of a result subject `gt.results.<site>.<agent>.<jobId>`. */
export function parseResultSubject(subject: string): { site: string; agent: string; jobId: string } | null {
  const t = subject.split(".");
  if (t.length !== 5 || t[0] !== "gt" || t[1] !== "results" || !t[2] || !t[3] || !t[4]) return null;
  return { site: t[2], agent: t[3], jobId: t[4] };
}

/** Tokens of a heartbeat subject `gt.hb.<site>.<agent>`. */
export function parseHeartbeatSubject(subject: string): { site: string; agent: string } | null {
  const t = subject.split(".");
  if (t.length !== 4 || t[0] !== "gt" || t[1] !== "hb" || !t[2] || !t[3]) return null;
  return { site: t[2], agent: t[3] };
}
