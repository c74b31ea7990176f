// Verbs that live outside client/ and are composed in by bin/phpo. The simulator drives steering's
// own engine, which client/ may not import (eslint's boundary rules), so its verb is registered
// from the top-level simulate/ folder through this interface; client/ only knows its shape.
import type { Command } from "commander";
import type { TaskSpec } from "../protocol/taskConfig.ts";
import type { VerbContext } from "./context.ts";

/** Runs a verb with a VerbContext and phpo's error handling, as the built-in verbs are run. */
export type VerbRunner = (fn: (ctx: VerbContext) => Promise<number>) => Promise<void>;

/** `phpo preview --simulate` and `phpo simulate` share these flags (strings as typed). */
export interface SimulateFlags {
  curves?: string;
  fromTask?: string;
  workers?: string;
  seeds?: string;
}

export interface PhpoExtension {
  /** Adds the extension's commands to the program. */
  register(program: Command, run: VerbRunner): void;
  /** The simulated cost of a compiled task, added to `phpo preview --simulate` (text or JSON value). */
  previewSimulate?(
    ctx: VerbContext,
    spec: TaskSpec,
    flags: SimulateFlags,
  ): Promise<{ text: string; json: unknown }>;
}
