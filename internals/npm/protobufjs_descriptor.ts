/**
 * protobufjs's `descriptor` extension, which turns parsed `.proto` files into the
 * `FileDescriptorProto`s server reflection sends, of the protobufjs that `protobufjs.ts` pins.
 *
 * @module
 */
export { default } from "npm:protobufjs@7.6.6/ext/descriptor/index.js";
