// `npm run bench`: every benchmark in sequence. Figures go to stdout; docs/benchmarks.md records
// the ones measured, with the command. Run one alone with `npm run bench -- scheduler`.
import { benchAgent } from "./agent.ts";
import { benchDatasetListing } from "./datasetListing.ts";
import { benchClusterFailover } from "./clusterFailover.ts";
import { benchMonitor } from "./monitor.ts";
import { benchPayloadFiles } from "./payloadFiles.ts";
import { benchReplay } from "./replay.ts";
import { benchScheduler } from "./scheduler.ts";
import { benchSearch } from "./search.ts";
import { benchSteeringCapacity } from "./steeringCapacity.ts";
import { benchTenantFlood } from "./tenantFlood.ts";
import { benchThroughput } from "./throughput.ts";

const benches: Record<string, () => Promise<void>> = {
  scheduler: benchScheduler,
  agent: benchAgent,
  throughput: benchThroughput,
  steering: benchSteeringCapacity,
  tenants: benchTenantFlood,
  "payload-files": benchPayloadFiles,
  search: benchSearch,
  monitor: benchMonitor,
  "dataset-ls": benchDatasetListing,
  "cluster-failover": benchClusterFailover,
  replay: benchReplay,
};

const wanted = process.argv.slice(2);
for (const [name, run] of Object.entries(benches)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  process.stdout.write(`\n### ${name}\n`);
  await run();
}
