// The exit codes every service ends with, so that whatever supervises it
// (npm start, Kubernetes, a shell script) can tell a failure worth a restart
// from one that a restart would only repeat. scripts/start/supervisor.mjs
// relies on the same numbers.

export const ExitCode = {
  /** Stopped as asked (SIGTERM, SIGINT), everything drained. */
  Ok: 0,
  /** Failed: a crash, a shutdown that failed or hung. Restarting may help. */
  Failure: 1,
  /**
   * sysexits' EX_CONFIG: the configuration is wrong (an invalid variable, a
   * partition count or replica count the deployment cannot take). The same
   * configuration fails the same way, so it is final: do not restart.
   */
  Config: 78,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
