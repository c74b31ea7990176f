// The wire protocol version. An evaluator whose version differs is refused at registration
// with PROTOCOL_MISMATCH and a message naming both versions.
export const PROTOCOL_VERSION = 1;
export const GRIDTUNE_VERSION = "0.1.0";
