// The wire protocol version. An evaluator whose version differs is refused at registration
// with PROTOCOL_MISMATCH and a message naming both versions.
// 2: the Job message carries only what the agent reads (v, segment, pointId, resource,
// trainingFiles, hasSandbox, hasCheckpoint and reportProgress are gone; a version-1 agent would
// refuse such a job).
export const PROTOCOL_VERSION = 2;
export const GRIDTUNE_VERSION = "0.1.0";
