// The site's image allow-list, checked by image ID: the names are resolved to IDs once (at the
// agent's start), so a name re-tagged to another image later is refused, and the container is
// created from the ID that was checked.
import type Docker from "dockerode";
import { RuntimeError } from "../../protocol/errors.ts";
import { missingImageAdvice } from "./imageAdvice.ts";
import { statusCode, type DockerDaemon } from "./dockerDaemon.ts";

export class ImageAllowList {
  private allowed: Promise<Map<string, string>> | undefined;

  constructor(
    private readonly daemon: DockerDaemon,
    /** Names or IDs; undefined: every image on the host is allowed. */
    private readonly refs: string[] | undefined,
  ) {}

  /** Resolves the allow-list to image IDs (once); throws IMAGE_MISSING / RUNTIME_UNAVAILABLE. */
  async init(): Promise<void> {
    await this.allowList();
  }

  /** The ID of the image `ref` names; throws IMAGE_MISSING, or IMAGE_NOT_ALLOWED when the list lacks it. */
  async check(ref: string): Promise<string> {
    const allowed = await this.allowList();
    const imageId = await this.imageId(ref);
    if (allowed && !allowed.has(imageId)) {
      throw new RuntimeError(
        "IMAGE_NOT_ALLOWED",
        `image "${ref}" (ID ${imageId.slice(0, 19)}) is not on this site's allow-list [${(this.refs ?? []).join(", ")}]; ` +
          `the list is checked by the image IDs those names had when the agent started (restart the agent after rebuilding an image)`,
      );
    }
    return imageId;
  }

  private allowList(): Promise<Map<string, string>> | undefined {
    if (!this.refs) return undefined;
    this.allowed ??= (async () => {
      const ids = new Map<string, string>();
      for (const ref of this.refs!) ids.set(await this.imageId(ref), ref);
      return ids;
    })();
    // A failed resolution (image not built yet, daemon down) is retried by the next call.
    this.allowed.catch(() => (this.allowed = undefined));
    return this.allowed;
  }

  private async imageId(ref: string): Promise<string> {
    try {
      const info = await this.daemon.call(`inspect image ${ref}`, (s) =>
        // dockerode passes abortSignal to the modem for every call; the image typings lack it.
        this.daemon.docker.getImage(ref).inspect({ abortSignal: s } as Docker.ImageInspectOptions),
      );
      return info.Id;
    } catch (err) {
      if (statusCode(err) === 404) {
        throw new RuntimeError(
          "IMAGE_MISSING",
          `image "${ref}" is not on this Docker host (no registry is used): ${missingImageAdvice(ref)}`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}
