/**
 * Every reason a node refuses what came to it over the network, one name per meaning, with the HTTP status a
 * request refused for it gets (an MQTT command's answer carries the name alone). The name is also the `reason`
 * label of every refusal metric. The collector, offload, commands and the status page each list the subset
 * they use; none spells a reason or a status of its own. A leaf file: anything may import it.
 */
export const REFUSAL_STATUS = {
  // the bytes are not what the route takes
  /** not this protocol's bytes: no sealed envelope, no batch, not a request of this kind */
  garbage: 400,
  /** a command that is not JSON or not a signed message */
  malformed: 400,
  truncated: 400,
  /** an envelope version this build does not read */
  version: 400,
  'bad-header': 400,
  /** opened and signed, but its payload is not what the header says */
  'bad-payload': 422,
  'too-large': 413,
  /** the sender went away before its body ended */
  aborted: 400,

  // who sent it
  /** the sender's key is not in the trust list or keyring */
  'unknown-key': 403,
  /** tampered, or sealed for another key */
  'cannot-open': 422,
  /** opened, but the signature inside does not hold */
  'bad-signature': 403,
  /** signed by one key but says it is another device, peer or batch's device */
  'wrong-sender': 403,
  /** a peer announcing an encryption key other than the one its keyring entry has */
  'wrong-box': 403,
  /** a key that may not do this (a peer's key on a command) */
  'wrong-role': 403,
  /** a command for another node */
  'wrong-target': 403,

  // when it was sent
  /** sent outside the freshness window (check the clocks) */
  expired: 408,
  replayed: 409,
  'out-of-order': 409,

  // how much at once
  /** more bodies are being read than the server takes at once */
  busy: 503,
  /** more bodies from this address at once than it may send */
  'too-many': 429,
  /** past offload.serve.maxRequestsPerSecond for this peer */
  'rate-limited': 429,

  // the collector's store: a seq outside 1..highest+window, a drop notice that does not hold up, the quota
  'bad-seq': 422,
  'bad-drop-range': 422,
  /** the device keeps the item and tries again later */
  quota: 507,
  /** our disk, not the item: the device keeps it and tries again */
  'store-failed': 503,
  /** the database is slow or away: nothing of the batch was kept; the device backs off and tries again */
  'store-busy': 503,

  // offload
  /** a model, dictionary or labels file this peer does not have */
  'unknown-model': 404,
  /** past offload.serve.runTimeoutMs */
  'timed-out': 504,
  /** POST /v1/files to a node without `serve.acceptModels` */
  'not-accepted': 403,
  failed: 500,

  // commands
  'unknown-action': 400,
  'bad-arguments': 400,
  /** the configuration file is broken: a restart or reload would take the node down */
  'invalid-config': 422,

  // the status page
  'bad-url': 400,
  'no-host': 400,
  'wrong-host': 421,
  'no-token': 401,
} as const;
export type Refusal = keyof typeof REFUSAL_STATUS;

/** A feature's refusals, in its own order, each with its status from the table (for its docs, metrics and answers). */
export function refusalsOf<const N extends Refusal>(names: readonly N[]): { readonly [K in N]: (typeof REFUSAL_STATUS)[K] } {
  return Object.fromEntries(names.map((n) => [n, REFUSAL_STATUS[n]])) as { [K in N]: (typeof REFUSAL_STATUS)[K] };
}
