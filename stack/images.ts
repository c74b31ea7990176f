// The locally built images (containers/build-images.sh) and a quick Docker liveness check.
import { request } from "node:http";

export const LOCAL_IMAGES = ["gridtune/python:1", "gridtune/busybox:1"];

export function dockerAnswers(
  socketPath = process.env.DOCKER_HOST?.replace(/^unix:\/\//, "") ?? "/var/run/docker.sock",
): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => (req.destroy(), resolve(false)));
    req.end();
  });
}
