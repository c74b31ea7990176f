// Typed lint for the whole repository. The import-boundary rules keep the three services
// independent: steering/, evaluator/ and client/ may import protocol/ but never each other; stack/
// and simulate/ are compositions (they may import every part; no service or protocol/ imports them).
import { builtinModules } from "node:module";
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const boundaryPatterns = (forbidden) =>
  forbidden.map((dir) => ({
    group: [`**/${dir}/**`, `../${dir}/*`, `../../${dir}/*`],
    message: `steering/, evaluator/ and client/ import protocol/ only, never ${dir}/.`,
  }));

const boundary = (forbidden) => ({
  "no-restricted-imports": ["error", { patterns: boundaryPatterns(forbidden) }],
});

// The pure parts of steering (docs/architecture.md, "Steering: a pure decider under a thin shell"):
// the decider and task engine (core/), the schedulers and the samplers decide from what they are
// given. They do no I/O and read neither the clock nor chance: time comes in as `now` (the
// shell's Clock), randomness from the task's seed. test/unit/purity-rule.test.ts proves each rule.
const PURE = ["steering/core/**/*.ts", "steering/scheduler/**/*.ts", "steering/sampler/**/*.ts"];
const impure = (what) => `steering/core, scheduler and sampler are pure: ${what}`;
const NO_IO = impure("no I/O here; do it in steering/shell and hand the result in (a command, the World).");
const NO_CLOCK = impure("no clock; take `now` as a parameter (the shell reads its Clock).");
const NO_CHANCE = impure("no Math.random; draw from the task's seeded Rng (protocol/rng.ts).");
const purity = {
  "no-restricted-imports": [
    "error",
    {
      paths: builtinModules.map((name) => ({ name, message: NO_IO })),
      patterns: [
        ...boundaryPatterns(["evaluator", "client", "stack", "simulate"]),
        { group: ["node:*"], message: NO_IO },
        { group: ["@nats-io/*", "nats"], message: NO_IO },
        { group: ["@aws-sdk/*"], message: NO_IO },
        { group: ["dockerode", "dockerode/*", "tar", "tar/*"], message: NO_IO },
        {
          // the shell and the steering program run I/O; the pure parts never reach into them
          regex: "^(\\.\\./)+(steering/)?(shell|program)(/|$)",
          message: impure("never import steering/shell or steering/program (they depend on core, not back)."),
        },
        {
          // the protocol modules that touch files or NATS
          regex: "/protocol/(natsConnect|natsRequestPatch|localFiles|dirs)(\\.ts)?$",
          message: NO_IO,
        },
      ],
    },
  ],
  "no-restricted-globals": [
    "error",
    { name: "Date", message: NO_CLOCK },
    { name: "performance", message: NO_CLOCK },
    ...["setTimeout", "setInterval", "setImmediate", "clearTimeout", "clearInterval", "clearImmediate"].map(
      (name) => ({ name, message: impure("no timers; the shell's Clock (every/after) runs them.") }),
    ),
    ...["process", "fetch", "crypto", "globalThis"].map((name) => ({ name, message: NO_IO })),
  ],
  "no-restricted-properties": [
    "error",
    { object: "Math", property: "random", message: NO_CHANCE },
    { object: "Date", property: "now", message: NO_CLOCK },
  ],
  "no-restricted-syntax": [
    "error",
    { selector: "NewExpression[callee.name='Date']", message: NO_CLOCK },
    { selector: "ImportExpression", message: impure("no dynamic import() (it escapes the import rules).") },
  ],
};

export default tseslint.config(
  { ignores: ["node_modules/**", "**/*.js", "!eslint.config.js", "containers/build/**", ".scratch/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's describe/it return promises the runner itself awaits.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            {
              from: "package",
              package: "node:test",
              name: ["describe", "it", "test", "suite", "before", "after", "beforeEach", "afterEach"],
            },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true },
      ],
    },
  },
  { files: ["steering/**/*.ts"], rules: boundary(["evaluator", "client", "stack", "simulate"]) },
  // after the steering boundary: its no-restricted-imports replaces that one (and repeats it)
  { files: PURE, rules: purity },
  { files: ["evaluator/**/*.ts"], rules: boundary(["steering", "client", "stack", "simulate"]) },
  { files: ["client/**/*.ts"], rules: boundary(["steering", "evaluator", "stack", "simulate"]) },
  { files: ["protocol/**/*.ts"], rules: boundary(["steering", "evaluator", "client", "stack", "simulate"]) },
  { files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked },
  // The spawn helper is plain CommonJS on purpose (it runs without the TypeScript loader).
  {
    files: ["**/*.cjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: "commonjs",
      globals: { require: "readonly", process: "readonly", Buffer: "readonly" },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, "@typescript-eslint/no-require-imports": "off" },
  },
);
