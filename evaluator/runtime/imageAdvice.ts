// Advice for an evaluation or steering image that is not on a Docker host. Agents use no registry,
// and containers/build-images.sh builds gridtune's own images only: pointing a user at it for
// their own image would send them to a script that cannot build it.

/** The images containers/build-images.sh builds. */
export const PROJECT_IMAGES: readonly string[] = [
  "gridtune/busybox:1",
  "gridtune/python:1",
  "gridtune/steering:1",
];

/** What to do about `ref` missing on the host: rebuild it (ours), or use or load an image (the user's). */
export function missingImageAdvice(ref: string): string {
  if (PROJECT_IMAGES.includes(ref))
    return `it is one of gridtune's own images: build it on that host with sudo containers/build-images.sh`;
  return (
    `use an image the site already has, or have the site's admin load it on the agent hosts ` +
    `(docker pull ${ref}, or docker load < image.tar)`
  );
}
