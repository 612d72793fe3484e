// The NATS side of the query API on a provisioned topology: rocket histories
// read from the events stream, and the watcher that keeps the API's view in
// step with the state bucket, neither with a consumer (the API's NATS user
// may create none: deploy/nats/accounts.conf). cmd/api builds its service
// from these without touching a NATS client.
//
// The watcher is returned built, not started: the API starts it once it is
// sure it is not stopping, and stops it after its last request is answered.

import type { ChannelHistorySource } from "../domain/history.js";
import { StreamChannelHistory, type ChannelHistorySettings } from "./channel-history.js";
import { ChannelStateWatcher, DEFAULT_WATCHER_SETTINGS } from "./channel-state-watcher.js";
import type { ChannelStateListener } from "../view/channel-state-listener.js";
import type { NatsConnection } from "./connection.js";
import { STATE_BUCKET, STATE_CHANGES_PREFIX, type Provisioned } from "./topology.js";
import type { Logger } from "../observability/logger.js";

export interface ApiAdapterSettings {
  history: ChannelHistorySettings;
  /** The connection's inbox prefix (NatsSettings.inboxPrefix): reads are answered there. */
  inboxPrefix: string | undefined;
}

export interface ApiAdapters {
  history: ChannelHistorySource;
  /** Follows the state bucket into `listener` once started. */
  watcher: ChannelStateWatcher;
  /** The bucket it watches, for the logs. */
  bucket: string;
}

export async function openApiAdapters(
  nc: NatsConnection,
  provisioned: Provisioned,
  settings: ApiAdapterSettings,
  listener: ChannelStateListener,
  log: Logger,
): Promise<ApiAdapters> {
  const history = new StreamChannelHistory(nc, provisioned.jsm, settings.history, log, settings.inboxPrefix);
  const watcher = new ChannelStateWatcher(nc, provisioned.jsm, { bucket: STATE_BUCKET, changes: STATE_CHANGES_PREFIX }, listener, log, {
    ...DEFAULT_WATCHER_SETTINGS,
    inboxPrefix: settings.inboxPrefix,
  });
  return { history, watcher, bucket: STATE_BUCKET };
}
