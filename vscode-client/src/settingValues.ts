// Values read from settings.json, which VS Code hands over as written (null, a number, a list) whatever type
// package.json declares for the setting. With no dependency on VS Code (unit-tested on its own).

/** A path setting's value, trimmed; "" (unset) for a value that is no string, which VS Code's settings editor
 * marks as such: calling .trim() on it threw, and the server never started. */
export function pathSetting(value: unknown): string {
  return typeof value === "string" ? value.trim() : "";
}
