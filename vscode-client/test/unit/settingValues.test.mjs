// Unit tests of reading settings.json values (src/settingValues.ts, compiled to out/unit by `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as values from "../../out/unit/settingValues.mjs";

test("a path setting of the wrong type in settings.json reads as unset instead of throwing", () => {
  for (const value of [null, 3, true, ["/usr/bin/python3"], { path: "/usr/bin/python3" }, undefined]) {
    assert.equal(values.pathSetting(value), "", JSON.stringify(value));
  }
  assert.equal(values.pathSetting("  ~/.venv/bin/python \n"), "~/.venv/bin/python");
});
