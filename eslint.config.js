// Typed lint for the whole repository. The import-boundary rules keep the three services
// independent: steering/, evaluator/ and client/ may import protocol/ but never each other; stack/
// and simulate/ are compositions (they may import every part; no service or protocol/ imports them).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const boundary = (forbidden) => ({
  "no-restricted-imports": [
    "error",
    {
      patterns: forbidden.map((dir) => ({
        group: [`**/${dir}/**`, `../${dir}/*`, `../../${dir}/*`],
        message: `steering/, evaluator/ and client/ import protocol/ only, never ${dir}/.`,
      })),
    },
  ],
});

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
