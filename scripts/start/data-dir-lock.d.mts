// Types of data-dir-lock.mjs, for the tests that import it.

export declare const LOCK_FILE: string;

export interface LockHolder {
  pid: number;
  natsPid?: number;
  host: string;
  startedAt: string;
}

export declare class DataDirInUseError extends Error {
  readonly holder: LockHolder | undefined;
}

export interface DataDirLock {
  file: string;
  /** Whose stale lock was taken over, if any. */
  tookOver: Partial<LockHolder> | undefined;
  update(fields: Partial<LockHolder>): void;
  release(): void;
}

export declare function isRunning(pid: number, program: string): boolean;
export declare function natsServersOn(dataDir: string): number[];
export declare function lockDataDir(dataDir: string, options?: { attempts?: number }): DataDirLock;
