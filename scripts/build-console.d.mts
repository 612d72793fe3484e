// Types of scripts/build-console.mjs for the TypeScript tests that build the console.
export declare const CONSOLE_OUT_DIR: string;
export declare function buildConsole(outdir?: string): Promise<string>;
