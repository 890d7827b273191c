/**
 * grpc-go (Debian's golang-google-grpc-dev) against our client and our server: see
 * tests/peers/suite.ts for what is tested and docs/interop.md for how.
 */
import { GO_PEER } from "../peers/peers.ts";
import { testInterop } from "../peers/suite.ts";

testInterop(GO_PEER);
