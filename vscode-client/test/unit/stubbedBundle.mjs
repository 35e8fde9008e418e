// Bundles one extension module for a unit test with stand-ins for the modules that only run inside VS Code (vscode,
// vscode-languageclient), and imports it; and the document stand-in the tests share.
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

/** A document stand-in whose positions are plain offsets (the stubbed Range holds them as start and end). */
export function offsetDocument(text, uri = "file:///a.py") {
  return {
    uri: { scheme: uri.slice(0, uri.indexOf(":")), toString: () => uri },
    version: 1,
    eol: 1,
    text,
    offsetAt: (p) => p,
    positionAt: (offset) => offset,
    getText(range) {
      return range ? this.text.slice(range.start, range.end) : this.text;
    },
  };
}
