// Messages between a cluster primary and its workers travel as plain
// objects over the IPC channel, next to other senders' (prom-client's own
// aggregation requests): each kind is told apart by its `type`.

export function isIpcMessage<T extends { type: string }>(value: unknown, type: T["type"]): value is T {
  return typeof value === "object" && value !== null && (value as { type?: unknown }).type === type;
}
