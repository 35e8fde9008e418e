// Drive a real VS Code (code-server in headless Chromium, playwright-core) through Tact in a Jupyter notebook: open
// the notebook (code-server's built-in ipynb support; no kernel is needed to edit cells), click into a code cell,
// type until ghost text appears and accept it with Tab. Screenshots go to config.screenshots; a JSON result to
// config.out.
//
// Then, with config.nextEdit, rename a word in another cell and wait for the predicted next edit: its decoration
// appears elsewhere in that cell and Tab applies it (as e2e.mjs does in a file). With nextEdit.otherCell, Tab goes on
// applying the edits shown in that cell until one is shown in the other cell (the rename carried to a cell below),
// which Tab then applies there too. With nextEdit.outOfView, the rename is carried to a cell far below, out of view:
// its hint is shown at the cursor, naming the cell, and Tab scrolls to that cell and applies it there.
//
// Usage: node e2eNotebook.mjs CONFIG.json, where CONFIG has what e2eSession.mjs reads and: file (the notebook's name,
// opened with Ctrl+P), cell (0-based index of the code cell to type in; the cursor goes to its end), typed (text to
// type there), and optionally nextEdit {cell (0-based index of a code cell), line (0-based line of that cell), word
// (its first whole occurrence on that line is replaced), replacement (what is typed over it), timeoutMs, and
// optionally otherCell (0-based index of the code cell the rename should reach last) or outOfView (true: the cell
// it should reach last is out of view)}.
import { editorLines, ghostText, nextEditHint, nextEditHintEditor, Session } from "./e2eSession.mjs";

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

  if (config.nextEdit) {
    // rename a word in a cell; the predicted next edit is shown elsewhere in the cell; Tab applies it
    const { cell, line, word, replacement } = config.nextEdit;
    await cells.nth(cell).locator(".view-lines").click();
    await cells.nth(cell).and(page.locator(FOCUSED_CELL)).waitFor({ timeout: session.remaining(5000) });
    await page.keyboard.press("Control+Home");
    const lines = await editorLines(page, FOCUSED_CELL);
    const column = lines[line]?.search(new RegExp(`\\b${word}\\b`)) ?? -1;
    if (column < 0) {
      throw new Error(`no ${JSON.stringify(word)} on line ${line} of cell ${cell}: ${JSON.stringify(lines)}`);
    }
    for (let i = 0; i < line; i++) {
      await page.keyboard.press("ArrowDown");
    }
    await page.keyboard.press("Home");
    for (let i = 0; i < column; i++) {
      await page.keyboard.press("ArrowRight");
    }
    for (let i = 0; i < word.length; i++) {
      await page.keyboard.press("Shift+ArrowRight");
    }
    await page.keyboard.type(replacement, { delay: 60 });
    result.linesAfterRename = await editorLines(page, FOCUSED_CELL);
    session.step("renamed", { lines: result.linesAfterRename });
    await session.applyNextEdit(page, {
      editor: FOCUSED_CELL,
      timeoutMs: config.nextEdit.timeoutMs,
      shots: { shown: "03-cell-next-edit.png", applied: "04-cell-next-edit-applied.png" },
    });
    // let the accept reach the server
    await page.waitForTimeout(1000);
    if (config.nextEdit.otherCell !== undefined) {
      await applyInOtherCell(page, cell, config.nextEdit.otherCell, config.nextEdit.timeoutMs ?? 20000);
    }
    if (config.nextEdit.outOfView) {
      await applyOutOfView(page, cell, config.nextEdit.timeoutMs ?? 20000);
    }
  }
});

/** Which cell editor has the keyboard focus (its index); -1 when none does. */
async function focusedCell(page) {
  return page.evaluate((selector) => [...document.querySelectorAll(selector)].findIndex((e) => e.classList.contains("focused")), CELL_EDITORS);
}

/** Tab applies the next edits shown in cell until one is shown in otherCell; Tab applies that one too. Sets
 * result.inCellEditsApplied, result.linesOfCellBeforeOtherCell, result.otherCellHint, result.otherCellLinesBefore,
 * result.otherCellLinesAfter and result.focusedCellAfterOtherCell; throws when none is shown in otherCell in time. */
async function applyInOtherCell(page, cell, otherCell, timeoutMs) {
  result.otherCellLinesBefore = await editorLines(page, CELL_EDITORS, otherCell);
  result.inCellEditsApplied = 0;
  const until = Date.now() + session.remaining(timeoutMs);
  let shownIn = -1;
  while (Date.now() < until) {
    shownIn = await nextEditHintEditor(page, CELL_EDITORS);
    if (shownIn === otherCell) {
      break;
    }
    if (shownIn === cell) {
      // the rename's next use in the same cell comes first
      await page.keyboard.press("Tab");
      result.inCellEditsApplied += 1;
      await page.waitForTimeout(800);
      continue;
    }
    await page.waitForTimeout(250);
  }
  result.linesOfCellBeforeOtherCell = await editorLines(page, CELL_EDITORS, cell);
  result.otherCellHint = shownIn === otherCell ? await nextEditHint(page) : "";
  await session.shot(page, "05-other-cell-next-edit.png");
  if (!result.otherCellHint) {
    throw new Error(`no next edit was shown in cell ${otherCell} (shown in: ${shownIn})`);
  }
  session.step("next edit shown in another cell", { hint: result.otherCellHint, inCellEditsApplied: result.inCellEditsApplied });
  if (await ghostText(page)) {
    await page.keyboard.press("Escape"); // a ghost text would take the Tab: dismiss it first
    await session.waitGhostGone(page);
  }
  await page.keyboard.press("Tab");
  await page.waitForTimeout(800);
  result.otherCellLinesAfter = await editorLines(page, CELL_EDITORS, otherCell);
  result.focusedCellAfterOtherCell = await focusedCell(page);
  await session.shot(page, "06-other-cell-next-edit-applied.png");
  session.step("next edit applied in another cell", { lines: result.otherCellLinesAfter, focused: result.focusedCellAfterOtherCell });
  // let the accept reach the server
  await page.waitForTimeout(1000);
}

/** Tab applies the next edits shown in cell until the one for a cell out of view is shown, at the cursor in cell,
 * naming that cell; Tab applies that one too. Sets result.inCellEditsApplied, result.outOfViewHint,
 * result.outOfViewLinesAfter (the focused cell's lines after Tab) and result.cellLinesAfterOutOfView; throws when no
 * such hint is shown in time. */
async function applyOutOfView(page, cell, timeoutMs) {
  result.inCellEditsApplied = 0;
  const until = Date.now() + session.remaining(timeoutMs);
  result.outOfViewHint = "";
  while (Date.now() < until) {
    const hint = (await nextEditHintEditor(page, CELL_EDITORS)) === cell ? await nextEditHint(page) : "";
    if (hint.includes(" in cell ")) {
      result.outOfViewHint = hint;
      break;
    }
    if (hint) {
      // the rename's next use in the same cell comes first
      await page.keyboard.press("Tab");
      result.inCellEditsApplied += 1;
      await page.waitForTimeout(800);
      continue;
    }
    await page.waitForTimeout(250);
  }
  await session.shot(page, "07-out-of-view-next-edit.png");
  if (!result.outOfViewHint) {
    throw new Error(`no next edit for a cell out of view was shown in cell ${cell}`);
  }
  session.step("next edit for a cell out of view shown", { hint: result.outOfViewHint, inCellEditsApplied: result.inCellEditsApplied });
  if (await ghostText(page)) {
    await page.keyboard.press("Escape"); // a ghost text would take the Tab: dismiss it first
    await session.waitGhostGone(page);
  }
  result.cellLinesBeforeOutOfView = await editorLines(page, FOCUSED_CELL);
  await page.keyboard.press("Tab");
  await page.waitForTimeout(1200);
  result.outOfViewLinesAfter = await editorLines(page, FOCUSED_CELL);
  await session.shot(page, "08-out-of-view-next-edit-applied.png");
  session.step("next edit applied in a cell out of view", { lines: result.outOfViewLinesAfter });
  // let the accept reach the server
  await page.waitForTimeout(1000);
}
