// Drive a real VS Code (code-server in headless Chromium, playwright-core) through one Tact session:
// open a Python file, type until ghost text appears, accept it with Tab; type again and dismiss the next
// suggestion with Escape. Screenshots go to config.screenshots; a JSON result to config.out.
//
// Then, with config.nextEdit, rename a word and wait for the predicted next edit: its decoration appears
// elsewhere in the file and Tab applies it.
//
// Usage: node e2e.mjs CONFIG.json, where CONFIG has: url, file (name to open with Ctrl+P), line (1-based
// line to type at, cursor at its end), typed (text to type there), second (text to type on a new line
// after it), toolsDir (folder whose node_modules holds playwright-core), chromium (binary), profile
// (fresh browser profile directory), screenshots, out, timeoutMs, and optionally nextEdit {line (1-based;
// the first word of that line is replaced), replacement (what is typed over it), timeoutMs} and widget {typed
// (typed on a new line before the completion widget is opened with Ctrl+Space), timeoutMs}.
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const require = createRequire(join(config.toolsDir, "package.json"));
const { chromium } = require("playwright-core");

const GHOST = ".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text";
const result = { steps: [], screenshots: [] };
const started = Date.now();
const deadline = started + config.timeoutMs;
mkdirSync(config.screenshots, { recursive: true });

function step(name, extra = {}) {
  result.steps.push({ name, t: (Date.now() - started) / 1000, ...extra });
}

function remaining(capMs) {
  return Math.max(1000, Math.min(capMs, deadline - Date.now()));
}

async function shot(page, name) {
  const path = join(config.screenshots, name);
  await page.screenshot({ path });
  result.screenshots.push(path);
}

/** The text of every rendered line of the active editor, top to bottom (Monaco renders spaces as U+00A0). */
async function editorLines(page) {
  return page.evaluate((ghost) => {
    const editor = document.querySelector(".editor-group-container.active .monaco-editor") ?? document.querySelector(".monaco-editor");
    const lines = [...(editor?.querySelectorAll(".view-lines .view-line") ?? [])];
    return lines
      .map((el) => {
        // ghost text is rendered inside the line: leave it out
        const copy = el.cloneNode(true);
        copy.querySelectorAll(ghost).forEach((g) => g.remove());
        return { top: parseFloat(el.style.top || "0"), text: (copy.textContent ?? "").replace(/\u00a0/g, " ") };
      })
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text);
  }, GHOST.replace(/\.monaco-editor /g, ""));
}

async function ghostText(page) {
  return page.evaluate((selector) => [...document.querySelectorAll(selector)].map((el) => (el.textContent ?? "").replace(/\u00a0/g, " ")).join(""), GHOST);
}

/** Type, then wait for ghost text; if none comes, type a space-free nudge or ask explicitly (Alt+\). */
async function typeUntilGhost(page, text, label) {
  await page.keyboard.type(text, { delay: 60 });
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      await page.waitForSelector(GHOST, { state: "visible", timeout: remaining(attempt === 0 ? 12000 : 8000) });
      const ghost = await ghostText(page);
      step(`${label}: ghost text`, { ghost, attempt });
      return ghost;
    } catch {
      step(`${label}: no ghost text yet`, { attempt });
      // an explicit request (Alt+\) is never skipped by the server's gates
      await page.keyboard.press("Alt+Backslash");
    }
  }
  throw new Error(`${label}: no ghost text appeared`);
}

const NEXT_EDIT_HINT = "Tab to apply";

/** The text of the next-edit hint: the extension renders it as an `after` decoration (a CSS ::after). */
async function nextEditHint(page) {
  return page.evaluate((hint) => {
    for (const el of document.querySelectorAll(".monaco-editor .view-lines span")) {
      const content = getComputedStyle(el, "::after").content;
      if (content && content.includes(hint)) {
        try {
          return JSON.parse(content);
        } catch {
          return content;
        }
      }
    }
    return "";
  }, NEXT_EDIT_HINT);
}

async function waitGhostGone(page) {
  await page.waitForSelector(GHOST, { state: "detached", timeout: remaining(5000) }).catch(() => {});
}

let context;
try {
  context = await chromium.launchPersistentContext(config.profile, {
    executablePath: config.chromium,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20000);
  await page.goto(config.url, { waitUntil: "domcontentloaded", timeout: remaining(30000) });
  await page.waitForSelector(".monaco-workbench", { timeout: remaining(30000) });
  step("workbench");

  // open the file (Ctrl+P), wait for its editor
  await page.waitForTimeout(500);
  await page.keyboard.press("Control+P");
  await page.waitForSelector(".quick-input-widget input", { state: "visible" });
  await page.keyboard.type(config.file, { delay: 20 });
  await page.waitForSelector(".quick-input-list .monaco-list-row", { state: "visible" });
  await page.keyboard.press("Enter");
  await page.waitForSelector(`.tab.active[aria-label*="${config.file}"]`, { timeout: remaining(15000) });
  await page.waitForSelector(".editor-group-container.active .monaco-editor .view-lines", { timeout: remaining(15000) });
  step("file open");

  // the extension is up when its status bar item shows a running server with its model loaded (it lists "shown")
  const status = page.locator(".statusbar-item", { hasText: "Tact" }).filter({ hasText: "shown" });
  try {
    await status.first().waitFor({ state: "visible", timeout: remaining(60000) });
    result.statusBefore = (await status.first().innerText()).trim();
    step("server running", { status: result.statusBefore });
  } catch (error) {
    result.statusBefore = await page.locator(".statusbar-item", { hasText: "Tact" }).first().innerText().catch(() => "");
    await shot(page, "00-no-server.png");
    throw new Error(`the Tact status bar item never showed a running server (it says: ${JSON.stringify(result.statusBefore)})`);
  }

  // go to the line and its end
  await page.keyboard.press("Control+G");
  await page.waitForSelector(".quick-input-widget input", { state: "visible" });
  await page.keyboard.type(String(config.line));
  await page.keyboard.press("Enter");
  await page.keyboard.press("End");

  // 1. ghost text appears; Tab accepts it
  result.ghost1 = await typeUntilGhost(page, config.typed, "first suggestion");
  result.linesBeforeAccept = await editorLines(page);
  await shot(page, "01-ghost-text.png");
  await page.keyboard.press("Tab");
  await waitGhostGone(page);
  await page.waitForTimeout(300);
  result.linesAfterAccept = await editorLines(page);
  await shot(page, "02-accepted.png");
  step("accepted");

  // 2. a new line, a new suggestion; Escape dismisses it
  await page.keyboard.press("End");
  await page.keyboard.press("Enter");
  result.ghost2 = await typeUntilGhost(page, config.second, "second suggestion");
  await shot(page, "03-second-ghost-text.png");
  await page.keyboard.press("Escape");
  await waitGhostGone(page);
  result.ghostAfterEscape = await ghostText(page);
  result.linesAfterEscape = await editorLines(page);
  step("dismissed");
  // let the notifications reach the server, and the status bar count them
  await page.waitForTimeout(1500);
  result.statusAfter = (await page.locator(".statusbar-item", { hasText: "Tact" }).first().innerText().catch(() => "")).trim();
  await shot(page, "04-dismissed.png");

  if (config.widget) {
    // 2b. the completion widget open with an entry selected: ghost text extends the entry
    await page.keyboard.press("End");
    await page.keyboard.press("Enter");
    await page.keyboard.type(config.widget.typed, { delay: 60 });
    await page.keyboard.press("Control+Space");
    await page.waitForSelector(".suggest-widget.visible", { state: "visible", timeout: remaining(10000) });
    let ghost = "";
    const until = Date.now() + remaining(config.widget.timeoutMs ?? 15000);
    while (!ghost && Date.now() < until) {
      await page.waitForTimeout(250);
      ghost = await ghostText(page);
    }
    result.widgetGhost = ghost;
    result.widgetVisible = await page.locator(".suggest-widget.visible").count() > 0;
    result.widgetEntry = (await page.locator(".suggest-widget .monaco-list-row.focused").first().innerText().catch(() => "")).trim();
    await shot(page, "04b-widget-ghost-text.png");
    step("widget", { ghost, entry: result.widgetEntry });
    await page.keyboard.press("Escape"); // closes the widget (VS Code's own binding goes first)
    await page.waitForTimeout(300);
    result.widgetAfterEscape = await page.locator(".suggest-widget.visible").count() > 0;
    if (await ghostText(page)) {
      await page.keyboard.press("Escape");
      await waitGhostGone(page);
    }
    await page.waitForTimeout(1000);
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
    step("renamed");
    const until = Date.now() + remaining(config.nextEdit.timeoutMs ?? 20000);
    let hint = "";
    while (!hint && Date.now() < until) {
      await page.waitForTimeout(250);
      hint = await nextEditHint(page);
    }
    result.nextEditHint = hint;
    await shot(page, "05-next-edit.png");
    if (!hint) {
      throw new Error("no next edit was shown after the rename");
    }
    step("next edit shown", { hint });
    if (await ghostText(page)) {
      await page.keyboard.press("Escape"); // a ghost text would take the Tab: dismiss it first
      await waitGhostGone(page);
    }
    await page.keyboard.press("Tab");
    await page.waitForTimeout(800);
    result.linesAfterNextEdit = await editorLines(page);
    result.nextEditHintAfterTab = await nextEditHint(page);
    await shot(page, "06-next-edit-applied.png");
    step("next edit applied");
    await page.waitForTimeout(1000);
  }
} catch (error) {
  result.error = error instanceof Error ? `${error.message}\n${error.stack}` : String(error);
  try {
    const page = context?.pages()[0];
    if (page) {
      await shot(page, "99-failure.png");
    }
  } catch {
    // the browser is gone
  }
} finally {
  result.elapsed_s = (Date.now() - started) / 1000;
  writeFileSync(config.out, JSON.stringify(result, null, 1));
  await context?.close().catch(() => {});
}
process.exit(result.error ? 1 : 0);
