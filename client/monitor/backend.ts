// Where the monitor's data comes from. NatsBackend asks steering through the same API client as
// phpo (the user's NATS identity: it sees only the user's tasks) and follows gt.events.<user>.>;
// the benchmark feeds the same server a generated task through this interface.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { type ArtifactKind } from "../../protocol/messages.ts";
import { type DownloadItem, type TaskDetail, TaskEvents, type TaskSummary } from "../../protocol/api.ts";
import { pages, showAll } from "../paging.ts";
import { subjects } from "../../protocol/subjects.ts";
import type { ApiClient } from "../api.ts";
import { fetchResponse } from "../fetchFile.ts";
import { logText, pointArtifacts } from "../verbs/logs.ts";

export type ControlVerb = "kill" | "pause" | "resume";

export interface MonitorBackend {
  readonly user: string;
  list(): Promise<TaskSummary[]>;
  show(taskId: string): Promise<TaskDetail>;
  control(verb: ControlVerb, taskId: string): Promise<TaskSummary>;
  retry(taskId: string, failedOnly: boolean): Promise<{ task: TaskSummary; requeued: number }>;
  /** Presigned GETs of one point's artifacts (every attempt). */
  artifacts(taskId: string, pointId: number, kinds: ArtifactKind[]): Promise<DownloadItem[]>;
  logText(item: DownloadItem): Promise<string>;
  /** The artifact's bytes as a stream (fetched by the server: the page talks to nothing else). */
  open(item: DownloadItem): Promise<Response>;
  /** Calls `on` with each watch message of the user's tasks; returns the unsubscribe. */
  subscribe(on: (e: TaskEvents) => void): () => void;
}

export class NatsBackend implements MonitorBackend {
  constructor(
    private readonly nc: NatsConnection,
    private readonly api: ApiClient,
  ) {}

  get user(): string {
    return this.api.user;
  }

  async list(): Promise<TaskSummary[]> {
    const out: TaskSummary[] = [];
    for await (const p of pages((from) => this.api.call("list", { from }))) out.push(...p.tasks);
    return out;
  }

  show(taskId: string): Promise<TaskDetail> {
    return showAll((pointsFrom, pointsLimit) => this.api.call("show", { taskId, pointsFrom, pointsLimit }));
  }

  control(verb: ControlVerb, taskId: string): Promise<TaskSummary> {
    return this.api.call(verb, { taskId });
  }

  retry(taskId: string, failedOnly: boolean): Promise<{ task: TaskSummary; requeued: number }> {
    return this.api.call("retry", { taskId, failedOnly });
  }

  artifacts(taskId: string, pointId: number, kinds: ArtifactKind[]): Promise<DownloadItem[]> {
    return pointArtifacts(this.api, taskId, pointId, kinds);
  }

  logText(item: DownloadItem): Promise<string> {
    return logText(item);
  }

  open(item: DownloadItem): Promise<Response> {
    return fetchResponse(item.url, `the ${item.kind} ${item.name}`);
  }

  subscribe(on: (e: TaskEvents) => void): () => void {
    const sub: Subscription = this.nc.subscribe(subjects.events(this.user, ">"), {
      callback: (err, msg) => {
        if (err) return;
        let json: unknown;
        try {
          json = msg.json();
        } catch {
          return; // not JSON: nothing a page could use
        }
        const m = TaskEvents.safeParse(json);
        if (m.success) on(m.data);
      },
    });
    return () => sub.unsubscribe();
  }
}
