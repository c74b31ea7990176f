// The identity store: who may connect to NATS. `<dir>/identities.json` (0600) holds each identity
// with its nkey public key; the seeds (the only secrets) are in `<dir>/seeds/<id>.nk` (0600), to be
// handed over to the site or user. The server configuration is rendered from this file.
import { createUser } from "@nats-io/nkeys";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { GridtuneError, ValidationError, describeZodError } from "../../protocol/errors.ts";
import { Identity, connectionName, identityId, parseIdentity } from "../../protocol/identity.ts";
import { ensurePrivateDir, writeFileAtomic } from "./fsutil.ts";

export const IdentityRecord = z.object({
  identity: Identity,
  publicKey: z.string().regex(/^U[A-Z2-7]{55}$/, { message: "must be an nkey user public key (U…)" }),
  createdAt: z.string(),
});
export type IdentityRecord = z.infer<typeof IdentityRecord>;

const StoreFile = z.object({ version: z.literal(1), identities: z.array(IdentityRecord) });
type StoreFile = z.infer<typeof StoreFile>;

export interface EnsureResult {
  record: IdentityRecord;
  seedFile: string;
  /** True when a new key pair was made by this call. */
  created: boolean;
}

export class IdentityStore {
  readonly dir: string;
  readonly file: string;
  readonly seedsDir: string;
  // Serialises read-modify-write cycles within this process.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, "identities.json");
    this.seedsDir = join(dir, "seeds");
  }

  /** Path of the identity's seed file (whether or not it exists). */
  seedFile(identity: Identity): string {
    return join(this.seedsDir, `${identityId(parseIdentity(identity))}.nk`);
  }

  async list(): Promise<IdentityRecord[]> {
    return (await this.read()).identities;
  }

  async get(identity: Identity): Promise<IdentityRecord | undefined> {
    const id = identityId(parseIdentity(identity));
    return (await this.read()).identities.find((r) => identityId(r.identity) === id);
  }

  /**
   * Makes the identity's nkey pair unless it exists with its seed file; idempotent. A record whose
   * seed file is gone (handed over and deleted) is kept: the holder still has the seed.
   */
  ensure(identity: Identity): Promise<EnsureResult> {
    const id = parseIdentity(identity);
    return this.locked(async () => {
      const data = await this.read();
      const existing = data.identities.find((r) => identityId(r.identity) === identityId(id));
      if (existing) return { record: existing, seedFile: this.seedFile(id), created: false };
      return this.issue(data, id);
    });
  }

  /** Replaces the identity's key pair (key rotation): the old seed stops working after a reload. */
  rotate(identity: Identity): Promise<EnsureResult> {
    const id = parseIdentity(identity);
    return this.locked(async () => {
      const data = await this.read();
      const before = data.identities.length;
      data.identities = data.identities.filter((r) => identityId(r.identity) !== identityId(id));
      if (data.identities.length === before) {
        throw new GridtuneError("NOT_FOUND", `identity ${connectionName(id)} does not exist; add it first`);
      }
      return this.issue(data, id);
    });
  }

  /** Removes the identity and its seed file; returns the removed records (empty if it was unknown). */
  remove(identity: Identity): Promise<IdentityRecord[]> {
    const id = parseIdentity(identity);
    return this.removeWhere((r) => identityId(r.identity) === identityId(id));
  }

  /** Removes every agent of a site. */
  removeSite(site: string): Promise<IdentityRecord[]> {
    return this.removeWhere((r) => r.identity.role === "agent" && r.identity.site === site);
  }

  private removeWhere(match: (r: IdentityRecord) => boolean): Promise<IdentityRecord[]> {
    return this.locked(async () => {
      const data = await this.read();
      const removed = data.identities.filter(match);
      if (removed.length === 0) return [];
      data.identities = data.identities.filter((r) => !match(r));
      await this.write(data);
      for (const r of removed) await rm(this.seedFile(r.identity), { force: true });
      return removed;
    });
  }

  private async issue(data: StoreFile, identity: Identity): Promise<EnsureResult> {
    const kp = createUser();
    const publicKey = kp.getPublicKey();
    const seed = kp.getSeed();
    const seedFile = this.seedFile(identity);
    try {
      await ensurePrivateDir(this.seedsDir);
      await writeFileAtomic(seedFile, seed, 0o600);
    } finally {
      kp.clear(); // zeroes the seed bytes held in memory
    }
    const record: IdentityRecord = { identity, publicKey, createdAt: new Date().toISOString() };
    data.identities.push(record);
    await this.write(data);
    return { record, seedFile, created: true };
  }

  private async read(): Promise<StoreFile> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, identities: [] };
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ValidationError(
        "INVALID_CONFIG",
        `${this.file} is not valid JSON; restore it from a backup`,
        {
          cause: err,
        },
      );
    }
    const r = StoreFile.safeParse(json);
    if (!r.success) {
      throw new ValidationError("INVALID_CONFIG", `${this.file} is invalid:\n${describeZodError(r.error)}`);
    }
    return r.data;
  }

  private async write(data: StoreFile): Promise<void> {
    await ensurePrivateDir(this.dir);
    await writeFileAtomic(this.file, JSON.stringify(data, null, 2) + "\n", 0o600);
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
