// The sequencer: partition ownership, consumers and per-channel actors
// (service.ts), run by the service runner (internal/service/runner.ts):
// ops server -> NATS -> topology -> join, take partitions -> ready; SIGTERM
// or SIGINT: not ready -> stop pulling, finish in-flight state writes,
// release every lease -> drain NATS -> exit 0.

import { loadConfigOrExit } from "../../internal/service/lifecycle.js";
import { runService } from "../../internal/service/runner.js";
import { loadConfig } from "./config.js";
import { buildSequencerService } from "./service.js";

await runService(loadConfigOrExit(loadConfig), buildSequencerService);
