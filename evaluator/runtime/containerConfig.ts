// The container a job gets, as one pure function so its hardening (and the GPU request shape,
// which cannot run without a GPU here) can be unit-tested. Everything security-relevant is fixed
// here, in the agent: a job only supplies argv, env, its working dir, network none/bridge (already
// checked against site policy by the agent), limits and the slot's GPU ids. No job field ever
// reaches HostConfig verbatim; the daemon itself would accept Privileged or a bind of "/".
import type Docker from "dockerode";
import { isAbsolute, normalize } from "node:path";
import { RuntimeError } from "../../protocol/errors.ts";
import { LABEL_MANAGED } from "../../protocol/names.ts";
import type { RunSpec } from "./types.ts";

/** Where the job's working directory is mounted and the payload's cwd (PanDA's path). */
export const CONTAINER_WORKDIR = "/srv/workDir";
export { LABEL_MANAGED };
export const LABEL_KEY = "org.gridtune.key";
/** The agent instance (evaluator/config.ts agentInstance) that made the container: its owner. */
export const LABEL_AGENT_INSTANCE = "org.gridtune.agent-instance";

export interface ContainerConfigOptions {
  /** Image ID (sha256:…) resolved by the runtime: the container is created from the ID, never a name. */
  imageId: string;
  /** Numeric "uid:gid" the payload runs as. */
  user: string;
  /** Size of the /tmp tmpfs, in Docker's syntax ("256m"). */
  tmpfsSize: string;
  /** RLIMIT_NOFILE (soft = hard). */
  nofile: number;
  /** Used when the spec sets no pidsLimit. */
  defaultPidsLimit: number;
  /** Used when the spec sets no memoryBytes; undefined = no memory limit. */
  defaultMemoryBytes?: number;
  /** Extra labels (e.g. the agent id), for finding leftovers. */
  labels?: Record<string, string>;
}

export type ContainerCreateOptions = Docker.ContainerCreateOptions & {
  HostConfig: Docker.HostConfig & { CgroupnsMode: "private" };
};

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Set by the runtime from the slot; a job's own value is dropped (NVIDIA_* would select GPUs). */
const RESERVED_ENV = /^(CUDA_VISIBLE_DEVICES|GRIDTUNE_GPUS|NVIDIA_.*)$/;

export function containerName(key: string): string {
  if (!NAME_RE.test(key)) {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `run key "${key}" cannot name a container: use 1-128 characters from [A-Za-z0-9_.-], starting with a letter or digit`,
    );
  }
  return `gridtune-${key}`;
}

/** Rejects a host path that is relative or could change the meaning of a "src:dst:mode" bind. */
export function checkWorkDir(workDir: string): void {
  if (
    !isAbsolute(workDir) ||
    normalize(workDir) !== workDir.replace(/\/+$/, "") ||
    /[:,\0\n]/.test(workDir)
  ) {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `workDir "${workDir}" must be a normalised absolute path without ':' or ',' (it is bind-mounted)`,
    );
  }
}

/** The create options for one run. Pure: same input, same output, no daemon needed. */
export function buildContainerConfig(spec: RunSpec, options: ContainerConfigOptions): ContainerCreateOptions {
  checkWorkDir(spec.workDir);
  if (spec.argv.length === 0 || spec.argv[0] === "") {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `run ${spec.key}: argv is empty; the evaluation needs a command`,
    );
  }
  if (spec.network !== "none" && spec.network !== "bridge") {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `run ${spec.key}: network must be "none" or "bridge", got "${String(spec.network)}"`,
    );
  }
  const env: string[] = [];
  for (const [k, v] of Object.entries(spec.env)) {
    if (!ENV_KEY_RE.test(k) || typeof v !== "string" || v.includes("\0")) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `run ${spec.key}: env ${JSON.stringify(k)} is not a valid variable name/value`,
      );
    }
    if (!RESERVED_ENV.test(k)) env.push(`${k}=${v}`);
  }
  const gpus = spec.gpus.map(String);
  // Inside the container the nvidia runtime exposes only the requested devices, renumbered from 0:
  // host ids in CUDA_VISIBLE_DEVICES would hide them. GRIDTUNE_GPUS keeps the host ids for logs.
  env.push(`CUDA_VISIBLE_DEVICES=${gpus.map((_, i) => String(i)).join(",")}`);
  // CUDA base images set NVIDIA_VISIBLE_DEVICES=all; where nvidia is the default runtime that
  // alone hands every GPU to the container. "void" for CPU slots, the slot's ids otherwise.
  env.push(`NVIDIA_VISIBLE_DEVICES=${gpus.length > 0 ? gpus.join(",") : "void"}`);
  env.push(`GRIDTUNE_GPUS=${gpus.join(",")}`);
  env.push("HOME=/tmp");

  const memory = spec.limits.memoryBytes ?? options.defaultMemoryBytes;
  const hostConfig: ContainerCreateOptions["HostConfig"] = {
    Binds: [`${spec.workDir.replace(/\/+$/, "") || "/"}:${CONTAINER_WORKDIR}:rw`],
    ReadonlyRootfs: true,
    Tmpfs: { "/tmp": `rw,nosuid,nodev,size=${options.tmpfsSize}` },
    CapDrop: ["ALL"],
    SecurityOpt: ["no-new-privileges"],
    Privileged: false,
    NetworkMode: spec.network,
    PidsLimit: spec.limits.pidsLimit ?? options.defaultPidsLimit,
    Init: true,
    IpcMode: "private",
    CgroupnsMode: "private",
    Ulimits: [{ Name: "nofile", Soft: options.nofile, Hard: options.nofile }],
    // The agent keeps the (capped) log from attach; Docker's own json-file log would be uncapped.
    LogConfig: { Type: "none", Config: {} },
    AutoRemove: false,
  };
  if (memory !== undefined) {
    hostConfig.Memory = memory;
    hostConfig.MemorySwap = memory; // no swap on top of the limit
  }
  if (spec.limits.nanoCpus !== undefined) hostConfig.NanoCpus = spec.limits.nanoCpus;
  if (gpus.length > 0) {
    hostConfig.DeviceRequests = [{ Driver: "nvidia", DeviceIDs: gpus, Capabilities: [["gpu"]] }];
  }
  return {
    name: containerName(spec.key),
    Image: options.imageId,
    Cmd: [...spec.argv],
    Env: env,
    User: options.user,
    WorkingDir: CONTAINER_WORKDIR,
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    Labels: { ...options.labels, [LABEL_MANAGED]: "true", [LABEL_KEY]: spec.key },
    HostConfig: hostConfig,
  };
}

// ------------------------------------------------------------------------- userns-remap
// With `dockerd --userns-remap=<user>` container ids are shifted into the remap user's
// subordinate ranges (/etc/subuid, /etc/subgid): container uid 1000 runs as host uid start+1000.
// The job's working directory must then be owned by the shifted ids, or the payload cannot
// write it (docs/security.md). These functions are pure; docker.ts reads the files and the daemon.

/** The user dockerd creates for `--userns-remap=default`. */
export const DEFAULT_REMAP_USER = "dockremap";

/** `docker info` SecurityOptions contain "name=userns" when the daemon remaps user namespaces. */
export function isUsernsRemapped(securityOptions: readonly string[] | undefined | null): boolean {
  return (securityOptions ?? []).some((o) => o.split(",").includes("name=userns"));
}

export interface SubordinateRange {
  start: number;
  count: number;
}

/**
 * The ranges of `name` (or of its numeric id) in /etc/subuid or /etc/subgid content
 * (`name:start:count` lines), sorted by start as dockerd maps them: the first `count` container
 * ids to the first range, the next ones to the next.
 */
export function parseSubordinateRanges(content: string, name: string, id?: number): SubordinateRange[] {
  const out: SubordinateRange[] = [];
  for (const raw of content.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([^:]+):(\d+):(\d+)$/.exec(line);
    if (!m) continue;
    if (m[1] !== name && (id === undefined || m[1] !== String(id))) continue;
    const start = Number(m[2]);
    const count = Number(m[3]);
    if (Number.isSafeInteger(start) && Number.isSafeInteger(count) && count > 0) out.push({ start, count });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The host id of container id `id` under these ranges, or undefined when it is not mapped. */
export function mapContainerId(ranges: readonly SubordinateRange[], id: number): number | undefined {
  let rest = id;
  for (const r of ranges) {
    if (rest < r.count) return r.start + rest;
    rest -= r.count;
  }
  return undefined;
}

/**
 * The host owner for the job's working directory: container uid:gid shifted through the remap
 * user's subordinate ranges. Throws INVALID_CONFIG when the user has no range or the id is
 * outside it (the payload could not write its working directory).
 */
export function remappedOwner(
  container: { uid: number; gid: number },
  subuid: string,
  subgid: string,
  remapUser: string = DEFAULT_REMAP_USER,
): { uid: number; gid: number } {
  const map = (content: string, id: number, file: string): number => {
    const ranges = parseSubordinateRanges(content, remapUser);
    const host = mapContainerId(ranges, id);
    if (host === undefined) {
      throw new RuntimeError(
        "INVALID_CONFIG",
        ranges.length === 0
          ? `dockerd runs with userns-remap but ${file} has no range for "${remapUser}": set the agent's userns-remap user (the name in dockerd's --userns-remap)`
          : `dockerd runs with userns-remap but container id ${id} is outside "${remapUser}"'s ranges in ${file}`,
      );
    }
    return host;
  };
  return { uid: map(subuid, container.uid, "/etc/subuid"), gid: map(subgid, container.gid, "/etc/subgid") };
}
