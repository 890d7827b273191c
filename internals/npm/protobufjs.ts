/**
 * protobufjs, pinned: what parses the `.proto` files. Its default export is the library, as
 * `import protobuf from "protobufjs"` gives it.
 *
 * @module
 */
export { default } from "npm:protobufjs@7.6.6";
