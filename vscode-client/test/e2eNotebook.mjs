// Drive a real VS Code (code-server in headless Chromium, playwright-core) through Tact in a Jupyter notebook: open
// the notebook (code-server's built-in ipynb support; no kernel is needed to edit cells), click into a code cell,
// type until ghost text appears and accept it with Tab. Screenshots go to config.screenshots; a JSON result to
// config.out.
//
// Usage: node e2eNotebook.mjs CONFIG.json, where CONFIG has what e2eSession.mjs reads and: file (the notebook's name,
// opened with Ctrl+P), cell (0-based index of the code cell to type in; the cursor goes to its end), typed (text to
// type there).
import { editorLines, Session } from "./e2eSession.mjs";

const session = new Session(process.argv[2]);
const { config, result } = session;
/** The editors of the notebook's code cells, in order. */
const CELL_EDITORS = ".notebook-editor .code-cell-row .cell-editor-container .monaco-editor";
/** The cell editor with the keyboard focus. */
const FOCUSED_CELL = ".notebook-editor .code-cell-row .monaco-editor.focused";

await session.run(async (page) => {
  await session.openFile(page, config.file);
  const cells = page.locator(CELL_EDITORS);
  await cells.nth(config.cell).waitFor({ state: "visible", timeout: session.remaining(20000) });
  result.cellCount = await cells.count();
  session.step("notebook open", { cells: result.cellCount });
  await session.waitForServer(page);

  // into the cell, to its end
  await cells.nth(config.cell).locator(".view-lines").click();
  await page.waitForSelector(FOCUSED_CELL, { timeout: session.remaining(5000) });
  await page.keyboard.press("Control+End");
  result.linesBefore = await editorLines(page, FOCUSED_CELL);
  session.step("cell focused", { lines: result.linesBefore });

  // ghost text appears in the cell; Tab accepts it
  result.ghost = await session.typeUntilGhost(page, config.typed, "cell suggestion");
  result.linesBeforeAccept = await editorLines(page, FOCUSED_CELL);
  await session.shot(page, "01-cell-ghost-text.png");
  await page.keyboard.press("Tab");
  await session.waitGhostGone(page);
  await page.waitForTimeout(300);
  result.linesAfterAccept = await editorLines(page, FOCUSED_CELL);
  await session.shot(page, "02-cell-accepted.png");
  session.step("accepted");
  // let the accept reach the server, and the status bar count it
  await page.waitForTimeout(1500);
  result.statusAfter = await session.status(page);
});
