// PanDA's docker-argument form of steeringExec (`run -v $(pwd):/data IMAGE cmd …`, used there
// without steeringContainer) is refused at submission, with the exact rewrite to use: gridtune runs
// a steering program either as a process on the steering host or, with steeringContainer, in its
// hardened steering container, never through a user-written docker command line (whose options
// could mount the host, add capabilities or reach the network). The rewrite maps the safe subset:
// the image becomes steeringContainer; `-v $(pwd):DIR` becomes the container's working directory
// (paths under DIR become relative names); `-w DIR` must be that directory; `-e K=V` becomes an
// `env K=V` prefix; `--rm`, `-i`, `-t` are dropped. Anything else is named as not translatable.
import { ValidationError } from "./errors.ts";
import { tokenizeExec } from "./execString.ts";

/** The host-side spellings of "the current directory" in a `-v SRC:DIR` of PanDA's form. */
const PWD_SOURCES = new Set(["$(pwd)", "${PWD}", "$PWD", "`pwd`", "."]);
const DROPPED_FLAGS = new Set(["--rm", "-i", "-t", "-it", "-ti", "--interactive", "--tty"]);

/** A token as a POSIX shell (and tokenizeExec) reads it back: quoted only where needed. */
export function quoteToken(t: string): string {
  if (t !== "" && /^[A-Za-z0-9_%=:,./@+-]+$/.test(t)) return t;
  return `'${t.replaceAll("'", `'\\''`)}'`;
}

export interface DockerFormRewrite {
  steeringContainer: string;
  steeringExec: string;
}

/**
 * The rewrite of PanDA's docker-argument form (tokens of steeringExec starting with `run`), or a
 * reason it has none (an option outside the subset). Pure, for the refusal's message.
 */
export function rewriteDockerForm(tokens: readonly string[]): DockerFormRewrite | { untranslatable: string } {
  let i = 1; // after "run"
  let mountDir: string | null = null;
  let workDir: string | null = null;
  const env: string[] = [];
  const value = (): string | null => {
    const v = tokens[i + 1];
    i += 2;
    return v === undefined ? null : v;
  };
  for (;;) {
    const t = tokens[i];
    if (t === undefined) return { untranslatable: "it names no image after the docker options" };
    if (!t.startsWith("-")) break;
    const eq = t.indexOf("=");
    const flag = t.startsWith("--") && eq > 0 ? t.slice(0, eq) : t;
    const inline = t.startsWith("--") && eq > 0 ? t.slice(eq + 1) : null;
    if (DROPPED_FLAGS.has(t)) {
      i++;
      continue;
    }
    if (flag === "-v" || flag === "--volume") {
      const v = inline ?? value();
      if (inline !== null) i++;
      const [src, dir, ...rest] = (v ?? "").split(":");
      if (src === undefined || dir === undefined || !PWD_SOURCES.has(src) || !dir.startsWith("/"))
        return {
          untranslatable: `the volume ${JSON.stringify(v)} is not \`$(pwd):/DIR\` (only the working directory can be given to a steering program)`,
        };
      if (rest.some((o) => o !== "rw" && o !== "ro" && o !== "z" && o !== "Z"))
        return { untranslatable: `the volume options of ${JSON.stringify(v)}` };
      if (mountDir !== null && mountDir !== dir)
        return { untranslatable: "it mounts the working directory at two places" };
      mountDir = dir.replace(/\/+$/, "") || "/";
      continue;
    }
    if (flag === "-w" || flag === "--workdir") {
      workDir = inline ?? value();
      if (inline !== null) i++;
      continue;
    }
    if (flag === "-e" || flag === "--env") {
      const kv = inline ?? value();
      if (inline !== null) i++;
      if (kv === null || !/^[A-Za-z_][A-Za-z0-9_]*=/.test(kv))
        return { untranslatable: `the environment setting ${JSON.stringify(kv)} (give it as -e NAME=VALUE)` };
      env.push(kv);
      continue;
    }
    return {
      untranslatable: `the docker option ${t} (the steering container's limits, user, network and mounts are steering's)`,
    };
  }
  const image = tokens[i]!;
  const command = tokens.slice(i + 1);
  if (command.length === 0)
    return {
      untranslatable: `it gives no command after the image ${image} (gridtune does not run an image's default command)`,
    };
  const wd = workDir?.replace(/\/+$/, "") ?? null;
  if (wd !== null && wd !== mountDir)
    return {
      untranslatable: `-w ${workDir} is not the mounted working directory (the program always starts in the iteration's directory)`,
    };
  // DIR/x → x and DIR → . inside every token, shell -c strings included
  const relative = (t: string): string => {
    if (mountDir === null || mountDir === "/") return t;
    const escaped = mountDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    return t
      .replace(new RegExp(`${escaped}/`, "g"), "")
      .replace(new RegExp(`${escaped}(?![A-Za-z0-9_.-])`, "g"), ".");
  };
  const argv = [...(env.length > 0 ? ["env", ...env] : []), ...command.map(relative)];
  return { steeringContainer: image, steeringExec: argv.map(quoteToken).join(" ") };
}

/**
 * Refuses PanDA's docker-argument form of steeringExec (see the file) with the rewrite to use.
 * A steeringExec that starts with `run` together with steeringContainer is a program named `run`.
 */
export function checkSteeringExecForm(spec: { steeringExec?: string; steeringContainer?: string }): void {
  if (!spec.steeringExec || spec.steeringContainer) return;
  checkSteeringArgvForm(tokenizeExec(spec.steeringExec, "steeringExec"), spec.steeringContainer);
}

/** checkSteeringExecForm on steeringExec's tokens (a task compiled before the check existed). */
export function checkSteeringArgvForm(
  tokens: readonly string[],
  steeringContainer: string | undefined,
): void {
  if (steeringContainer || tokens[0] !== "run") return;
  const r = rewriteDockerForm(tokens);
  const intro =
    "steeringExec is PanDA's docker-argument form (`run [OPTIONS] IMAGE COMMAND`, used without steeringContainer); " +
    "gridtune does not run user-written docker command lines: it runs the command in its hardened steering " +
    "container, with the task's sandbox files in the working directory";
  if ("untranslatable" in r)
    throw new ValidationError(
      "INVALID_CONFIG",
      `${intro}. It cannot be rewritten: ${r.untranslatable}. Put the image in steeringContainer and only the ` +
        `command in steeringExec, with %IN and %OUT as relative names (the program starts in the working directory).`,
    );
  throw new ValidationError(
    "INVALID_CONFIG",
    `${intro}. Use instead:\n` +
      `  --steeringContainer ${quoteToken(r.steeringContainer)} --steeringExec ${quoteToken(r.steeringExec)}\n` +
      `or in the JSON config:\n` +
      `  "steeringContainer": ${JSON.stringify(r.steeringContainer)}, "steeringExec": ${JSON.stringify(r.steeringExec)}`,
  );
}
