/**
 * gRPC C-core (Debian's python3-grpcio) against our client and our server: see
 * tests/peers/suite.ts for what is tested and docs/interop.md for how.
 */
import { PYTHON_PEER } from "../peers/peers.ts";
import { testInterop } from "../peers/suite.ts";

testInterop(PYTHON_PEER);
