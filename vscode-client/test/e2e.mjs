// Drive a real VS Code (code-server in headless Chromium, playwright-core) through one Tact session:
// open a Python file, type until ghost text appears, accept it with Tab; type again and dismiss the next
// suggestion with Escape. Screenshots go to config.screenshots; a JSON result to config.out.
//
// With config.undo {typed}, type that on a new line, accept the suggestion with Tab and undo it with Ctrl+Z.
// Then, with config.nextEdit, rename a word and wait for the predicted next edit: its decoration appears
// elsewhere in the file and Tab applies it. Last, with config.toggle, turn suggestions off from the command
// palette.
//
// Usage: node e2e.mjs CONFIG.json, where CONFIG has what e2eSession.mjs reads and: file (name to open with Ctrl+P),
// line (1-based line to type at, cursor at its end), typed (text to type there), second (text to type on a new line
// after it), and optionally nextEdit {line (1-based; the first word of that line is replaced), replacement (what is
// typed over it), timeoutMs} and widget {typed (typed on a new line before the completion widget is opened with
// Ctrl+Space), timeoutMs}.
import { editorLines, ghostText, Session } from "./e2eSession.mjs";

const session = new Session(process.argv[2]);
const { config, result } = session;

await session.run(async (page) => {
  // open the file (Ctrl+P), wait for its editor
  await session.openFile(page, config.file);
  await page.waitForSelector(".editor-group-container.active .monaco-editor .view-lines", { timeout: session.remaining(15000) });
  session.step("file open");
  await session.waitForServer(page);

  // go to the line and its end
  await page.keyboard.press("Control+G");
  await page.waitForSelector(".quick-input-widget input", { state: "visible" });
  await page.keyboard.type(String(config.line));
  await page.keyboard.press("Enter");
  await page.keyboard.press("End");

  // 1. ghost text appears; Tab accepts it
  result.ghost1 = await session.typeUntilGhost(page, config.typed, "first suggestion");
  result.linesBeforeAccept = await editorLines(page);
  await session.shot(page, "01-ghost-text.png");
  await page.keyboard.press("Tab");
  await session.waitGhostGone(page);
  await page.waitForTimeout(300);
  result.linesAfterAccept = await editorLines(page);
  await session.shot(page, "02-accepted.png");
  session.step("accepted");

  // 2. a new line, a new suggestion; Escape dismisses it
  await page.keyboard.press("End");
  await page.keyboard.press("Enter");
  result.ghost2 = await session.typeUntilGhost(page, config.second, "second suggestion");
  await session.shot(page, "03-second-ghost-text.png");
  await page.keyboard.press("Escape");
  await session.waitGhostGone(page);
  result.ghostAfterEscape = await ghostText(page);
  result.linesAfterEscape = await editorLines(page);
  session.step("dismissed");
  // let the notifications reach the server, and the status bar count them
  await page.waitForTimeout(1500);
  result.statusAfter = await session.status(page);
  await session.shot(page, "04-dismissed.png");

  if (config.widget) {
    // 2b. the completion widget open with an entry selected: ghost text extends the entry
    await page.keyboard.press("End");
    await page.keyboard.press("Enter");
    await page.keyboard.type(config.widget.typed, { delay: 60 });
    await page.keyboard.press("Control+Space");
    await page.waitForSelector(".suggest-widget.visible", { state: "visible", timeout: session.remaining(10000) });
    let ghost = "";
    const until = Date.now() + session.remaining(config.widget.timeoutMs ?? 15000);
    while (!ghost && Date.now() < until) {
      await page.waitForTimeout(250);
      ghost = await ghostText(page);
    }
    result.widgetGhost = ghost;
    result.widgetVisible = await page.locator(".suggest-widget.visible").count() > 0;
    result.widgetEntry = (await page.locator(".suggest-widget .monaco-list-row.focused").first().innerText().catch(() => "")).trim();
    await session.shot(page, "04b-widget-ghost-text.png");
    session.step("widget", { ghost, entry: result.widgetEntry });
    await page.keyboard.press("Escape"); // closes the widget (VS Code's own binding goes first)
    await page.waitForTimeout(300);
    result.widgetAfterEscape = await page.locator(".suggest-widget.visible").count() > 0;
    if (await ghostText(page)) {
      await page.keyboard.press("Escape");
      await session.waitGhostGone(page);
    }
    await page.waitForTimeout(1000);
  }

  if (config.undo) {
    // 2c. a new line, a suggestion accepted with Tab, then Ctrl+Z: the accept taken back
    await page.keyboard.press("End");
    await page.keyboard.press("Enter");
    result.ghostUndo = await session.typeUntilGhost(page, config.undo.typed, "suggestion to undo");
    result.linesBeforeUndoAccept = await editorLines(page);
    await page.keyboard.press("Tab");
    await session.waitGhostGone(page);
    await page.waitForTimeout(500);
    result.linesAfterUndoAccept = await editorLines(page);
    await page.keyboard.press("Control+Z");
    await page.waitForTimeout(1000);
    result.linesAfterUndo = await editorLines(page);
    await session.shot(page, "04c-accept-undone.png");
    session.step("undone");
    if (await ghostText(page)) { // VS Code may offer it again: dismissed, not left for the next step
      await page.keyboard.press("Escape");
      await session.waitGhostGone(page);
    }
  }

  if (config.nextEdit) {
    // 3. rename a word; the predicted next edit is shown elsewhere; Tab applies it
    await page.keyboard.press("Control+G");
    await page.waitForSelector(".quick-input-widget input", { state: "visible" });
    await page.keyboard.type(String(config.nextEdit.line));
    await page.keyboard.press("Enter");
    await page.keyboard.press("Home");
    await page.keyboard.press("Control+Shift+ArrowRight");
    await page.keyboard.type(config.nextEdit.replacement, { delay: 60 });
    result.linesAfterRename = await editorLines(page);
    session.step("renamed");
    await session.applyNextEdit(page, {
      timeoutMs: config.nextEdit.timeoutMs,
      shots: { shown: "05-next-edit.png", applied: "06-next-edit-applied.png" },
    });
    await page.waitForTimeout(1000);
  }

  if (config.toggle) {
    // 4. suggestions turned off from the command palette, as a user does: the extension updates tact.enable, and the
    // language client pushes the section the server registered (the test reads the server's record of it)
    await page.keyboard.press("F1");
    await page.waitForSelector(".quick-input-widget input", { state: "visible" });
    await page.keyboard.type("Tact: Turn Suggestions On or Off", { delay: 20 });
    await page.waitForSelector(".quick-input-list .monaco-list-row", { state: "visible" });
    await page.keyboard.press("Enter");
    session.step("toggled");
    await page.waitForTimeout(2000);
    result.statusAfterToggle = await session.status(page);
  }
});
