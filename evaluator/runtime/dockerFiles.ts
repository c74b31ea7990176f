// The working directory as the container's user sees it: owned by the payload's uid:gid, or,
// under a daemon started with --userns-remap, by those ids shifted into the remap user's
// subordinate ranges.
import { lchown, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { isUsernsRemapped, remappedOwner } from "./containerConfig.ts";
import type { DockerDaemon } from "./dockerDaemon.ts";

export interface RemapFiles {
  user: string;
  subuidFile: string;
  subgidFile: string;
}

/** Host owner of a working dir for the container user `own` under this daemon. */
export async function workDirOwnerOf(
  daemon: DockerDaemon,
  own: { uid: number; gid: number },
  remap: RemapFiles,
): Promise<{ uid: number; gid: number }> {
  const info = (await daemon.call("info", () => daemon.docker.info())) as { SecurityOptions?: string[] };
  if (!isUsernsRemapped(info.SecurityOptions)) return own;
  const read = (file: string) =>
    readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return "";
      throw err;
    });
  const [subuid, subgid] = await Promise.all([read(remap.subuidFile), read(remap.subgidFile)]);
  return remappedOwner(own, subuid, subgid, remap.user);
}

/** chown -R without following symlinks, so the payload (uid 1000) can write its working dir. */
export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await lchown(dir, uid, gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(p, uid, gid);
    else await lchown(p, uid, gid);
  }
}
