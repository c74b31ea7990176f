// Which containers are this agent's: its instance label on every container it makes. Only such a
// container is ever removed, by name (a leftover of the same run key on a name conflict) or as a
// leftover of a crashed run of this agent; anything else on the Docker host is left alone.
import type Docker from "dockerode";
import { RuntimeError } from "../../protocol/errors.ts";
import { LABEL_AGENT_INSTANCE, LABEL_MANAGED } from "./containerConfig.ts";
import { statusCode, type DockerDaemon } from "./dockerDaemon.ts";

export class ContainerOwnership {
  constructor(
    private readonly daemon: DockerDaemon,
    /** The owning agent's instance; without one nothing is ever removed (ownership cannot be told). */
    private readonly instance: string | undefined,
  ) {}

  /** Whether a container's labels say this runtime (its agent instance) made it. */
  isOwn(labels: Record<string, string> | undefined): boolean {
    return (
      this.instance !== undefined &&
      labels?.[LABEL_MANAGED] === "true" &&
      labels[LABEL_AGENT_INSTANCE] === this.instance
    );
  }

  /**
   * Creates the container. A name conflict is a leftover of this same run key only if the
   * existing container carries this agent instance's labels: then it is removed and the create
   * tried once more. Anything else of that name (another deployment's or agent's job, a user's
   * container) is left alone and the run fails with CONFLICT naming it.
   */
  async create(options: Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await this.daemon.call("create container", (s) =>
        this.daemon.docker.createContainer({ ...options, abortSignal: s }),
      );
    } catch (err) {
      if (statusCode(err) !== 409 || !options.name) throw err;
      const name = options.name;
      const existing = await this.daemon
        .call("inspect conflicting container", (s) =>
          this.daemon.docker.getContainer(name).inspect({ abortSignal: s }),
        )
        .catch((e: unknown) => {
          if (statusCode(e) === 404) return null; // gone meanwhile: just try again
          throw e;
        });
      if (existing && !this.isOwn(existing.Config.Labels)) {
        throw new RuntimeError(
          "CONFLICT",
          `a container named ${name} already exists and is not this agent's (its labels do not say ` +
            `${LABEL_AGENT_INSTANCE}=${this.instance ?? "?"}); it was left alone. Another deployment or ` +
            `agent on this Docker host uses the same names: give each agent its own name and NATS server, or remove that container if it is stale`,
          { cause: err },
        );
      }
      if (existing)
        await this.daemon.call("remove leftover", (s) =>
          this.daemon.docker
            .getContainer(existing.Id)
            .remove({ force: true, abortSignal: s } as Docker.ContainerRemoveOptions),
        );
      return await this.daemon.call("create container", (s) =>
        this.daemon.docker.createContainer({ ...options, abortSignal: s }),
      );
    }
  }

  /**
   * Removes this agent instance's containers that no run owns (after an agent crash): only those
   * labelled with its instance, each checked again by its labels before removal. Without an
   * instance nothing is removed (ownership could not be told).
   */
  async removeLeftovers(): Promise<number> {
    if (this.instance === undefined) return 0;
    const labels = [`${LABEL_MANAGED}=true`, `${LABEL_AGENT_INSTANCE}=${this.instance}`];
    const list = await this.daemon.call("list containers", (s) =>
      this.daemon.docker.listContainers({ all: true, filters: { label: labels }, abortSignal: s }),
    );
    let removed = 0;
    for (const c of list) {
      if (!this.isOwn(c.Labels)) continue;
      await this.daemon
        .call("remove leftover", (s) =>
          this.daemon.docker
            .getContainer(c.Id)
            .remove({ force: true, abortSignal: s } as Docker.ContainerRemoveOptions),
        )
        .catch((err: unknown) => {
          if (statusCode(err) !== 404) throw err;
        });
      removed++;
    }
    return removed;
  }
}
