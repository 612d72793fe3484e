// The query API: the fleet view, rocket histories, event streams and the
// operator console (service.ts), run by the service runner
// (internal/service/runner.ts): HTTP server -> NATS -> topology -> watch the
// state bucket -> ready once the view has loaded; SIGTERM or SIGINT: not
// ready -> close event streams, finish in-flight requests -> stop the watch
// -> drain NATS -> exit 0.

import { loadConfigOrExit } from "../../internal/service/lifecycle.js";
import { runService } from "../../internal/service/runner.js";
import { loadConfig } from "./config.js";
import { buildApiService } from "./service.js";

await runService(loadConfigOrExit(loadConfig), buildApiService);
