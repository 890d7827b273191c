/**
 * A `deno lint` plugin holding every function in the repository to the
 * denoland/std rule: at most two required parameters, the rest in an options
 * object. Registered under `lint.plugins` in deno.json, so `deno lint` (and
 * `deno task ok`) enforce it on exports and internal helpers alike.
 *
 * A signature a library dictates (a grpc-js handler, a node stream's
 * `_write(chunk, encoding, callback)`) is exempted where it is written with
 * `// deno-lint-ignore grpc-stream/max-required-params` and the reason.
 *
 * @module
 */

const MAX_REQUIRED = 2;

type FunctionNode =
  | Deno.lint.FunctionDeclaration
  | Deno.lint.FunctionExpression
  | Deno.lint.ArrowFunctionExpression
  | Deno.lint.TSDeclareFunction;

function isRequired(param: Deno.lint.Parameter): boolean {
  switch (param.type) {
    case "Identifier":
      // A TypeScript `this` parameter is not passed by the caller.
      return !param.optional && param.name !== "this";
    case "ObjectPattern":
    case "ArrayPattern":
      return !param.optional;
    case "TSParameterProperty":
      return isRequired(param.parameter as Deno.lint.Parameter);
    default:
      // AssignmentPattern (has a default) and RestElement are optional.
      return false;
  }
}

function check(context: Deno.lint.RuleContext, node: FunctionNode): void {
  const required = node.params.filter(isRequired).length;
  if (required > MAX_REQUIRED) {
    context.report({
      node,
      message:
        `Function takes ${required} required parameters: at most ${MAX_REQUIRED}, put the rest in an options object`,
    });
  }
}

const plugin: Deno.lint.Plugin = {
  name: "grpc-stream",
  rules: {
    "max-required-params": {
      create(context) {
        return {
          FunctionDeclaration: (node) => check(context, node),
          FunctionExpression: (node) => check(context, node),
          ArrowFunctionExpression: (node) => check(context, node),
          TSDeclareFunction: (node) => check(context, node),
        };
      },
    },
  },
};

export default plugin;
