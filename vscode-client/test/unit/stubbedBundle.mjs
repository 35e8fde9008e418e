// Bundles one extension module for a unit test with stand-ins for the modules that only run inside VS Code (vscode,
// vscode-languageclient), and imports it.
import { build } from "esbuild";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Bundles src/<name>.ts to out/unit/<name>.mjs with stubs (module name -> JavaScript source) and imports it. */
export async function importStubbed(name, stubs) {
  const outfile = path.join(root, `out/unit/${name}.mjs`);
  await build({
    entryPoints: [path.join(root, `src/${name}.ts`)],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    logLevel: "warning",
    plugins: [{
      name: "stubs",
      setup(b) {
        b.onResolve({ filter: /^vscode(-languageclient\/node)?$/ }, (args) => ({ path: args.path, namespace: "stub" }));
        b.onLoad({ filter: /.*/, namespace: "stub" }, (args) => ({ contents: stubs[args.path], loader: "js" }));
      },
    }],
  });
  return import(pathToFileURL(outfile).href);
}
