// A browser the TAP tests steer line by line: Debian's chromium, headless,
// driven through playwright-core (no browser of its own is downloaded).
// Reads one JSON command per line on stdin, answers one JSON line per
// command on stdout: {"ok": true, "value": ...} or {"ok": false, "error": "..."}.
//
//   {"cmd": "goto", "url": "http://127.0.0.1:8787/"}
//   {"cmd": "wait", "selector": "#workers", "text": "running", "timeout": 5000}
//   {"cmd": "text", "selector": "#job-file"}         textContent of the first match
//   {"cmd": "count", "selector": "img"}               number of matches
//   {"cmd": "eval", "expression": "window.pwned"}     a page expression's value
//   {"cmd": "fill", "selector": "#token", "value": "..."}, {"cmd": "click", "selector": "button"}
//   {"cmd": "screenshot", "path": "/tmp/x.png", "full_page": true}
//   {"cmd": "console", "clear": true}                   console errors and CSP violations so far (then forget them)
//   {"cmd": "quit"}
'use strict';

const readline = require('readline');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required'];

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));

  const commands = {
    goto: async (c) => { const r = await page.goto(c.url, { waitUntil: 'load' }); return r ? r.status() : null; },
    wait: async (c) => {
      const timeout = c.timeout || 5000;
      if (c.text === undefined) {
        await page.waitForSelector(c.selector, { timeout, state: c.state || 'visible' });
        return true;
      }
      await page.waitForFunction(([sel, text]) => [...document.querySelectorAll(sel)].some((e) => e.textContent.includes(text)),
        [c.selector, c.text], { timeout, polling: 50 });
      return true;
    },
    text: async (c) => page.$eval(c.selector, (e) => e.textContent),
    count: async (c) => page.$$eval(c.selector, (e) => e.length),
    eval: async (c) => page.evaluate(c.expression),
    fill: async (c) => { await page.fill(c.selector, c.value); return true; },
    click: async (c) => { await Promise.all([c.navigation ? page.waitForNavigation() : null, page.click(c.selector)]); return true; },
    screenshot: async (c) => { await page.screenshot({ path: c.path, fullPage: !!c.full_page }); return c.path; },
    console: async (c) => (c.clear ? problems.splice(0) : problems.slice()),
    quit: async () => { await browser.close(); return true; },
  };

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    let command = {};
    try {
      command = JSON.parse(line);
      const run = commands[command.cmd];
      if (!run) throw new Error('unknown command ' + command.cmd);
      answer = { ok: true, value: await run(command) };
    } catch (error) {
      answer = { ok: false, error: String(error && error.message ? error.message : error).split('\n')[0] };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
    if (command.cmd === 'quit') break;
  }
  await browser.close().catch(() => {});
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ ok: false, error: 'cannot start the browser: ' + error.message }) + '\n');
  process.exit(1);
});
