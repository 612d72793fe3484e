// How `npm start` and `npm run cluster` take Ctrl-C: the first SIGINT,
// SIGTERM or SIGHUP starts a clean stop (services first, then NATS); the
// copy npm forwards to its child right after is the same Ctrl-C and ignored;
// a second one later kills everything at once and exits 1.

/** A second signal this soon after the first is the same Ctrl-C, forwarded by npm to its child. */
const SAME_SIGNAL_MS = 1000;

/**
 * @param {{
 *   stopping: () => boolean,
 *   stop: (signal: string) => void,
 *   killAll: () => void,
 *   say: (message: string) => void,
 * }} handlers `stop` starts the clean stop and exits when done; `killAll` SIGKILLs every child.
 */
export function onStopSignals({ stopping, stop, killAll, say }) {
  let firstSignalAt = 0;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      if (!stopping()) {
        firstSignalAt = Date.now();
        stop(signal);
        return;
      }
      if (Date.now() - firstSignalAt < SAME_SIGNAL_MS) return;
      say(`${signal} again: killing everything now`);
      killAll();
      process.exit(1);
    });
  }
}
