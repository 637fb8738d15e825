// The only Node globals the Vite configuration and dev helpers use. Declared here so
// that type-checking them needs no @types/node.
declare const process: {
  readonly env: Record<string, string | undefined>;
};
