// Contract tests: the same cases run against each implementation of a port
// (the JetStream adapter on a real nats-server, the in-memory one the unit
// tests use), so a rule the memory adapter broke fails here instead of
// letting unit tests pass against code that fails on NATS.

import { afterAll, beforeAll, describe } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "./nats-server.js";

export interface ContractSubject {
  setUp?(): Promise<void>;
  tearDown?(): Promise<void>;
}

/** Runs `cases` once per named implementation, each set up before its cases and torn down after them. */
export function describeContract<S extends ContractSubject>(title: string, subjects: ReadonlyArray<readonly [string, S]>, cases: (subject: S) => void): void {
  describe.each(subjects)(`${title}: %s`, (_name, subject) => {
    beforeAll(() => subject.setUp?.(), 30_000);
    afterAll(() => subject.tearDown?.());
    cases(subject);
  });
}

/** A real nats-server and one connection to it, for the JetStream side of a contract. */
export class NatsContractServer {
  private server: NatsServer | undefined;
  private nc: NatsConnection | undefined;

  async start(): Promise<NatsConnection> {
    this.server = await NatsServer.start();
    this.nc = await connect({ servers: this.server.url });
    return this.nc;
  }

  async stop(): Promise<void> {
    await this.nc?.close();
    await this.server?.dispose();
  }
}
