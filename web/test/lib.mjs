// Shared helpers of the browser tests and benchmarks: a plain static
// server (python3 -m http.server, as the issue asks: no compression, no
// special headers) and Debian's headless Chromium through playwright-core.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, readdirSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const dist = process.env.MOTE_DIST ? path.resolve(process.env.MOTE_DIST) : path.join(root, "dist");
export const webDir = path.join(dist, "web");
export const shared = path.resolve(root, "..", "shared");
export const artifacts = path.join(root, "tests", "artifacts");

// site makes a folder served by the tests: every entry of dist/web (linked)
// plus a fixtures/ folder for the test's own files. Returns its path.
export function site() {
	const dir = mkdtempSync(path.join(tmpdir(), "mote-web-"));
	for (const name of readdirSync(webDir)) {
		symlinkSync(path.join(webDir, name), path.join(dir, name));
	}
	mkdirSync(path.join(dir, "fixtures"));
	return dir;
}

// serve starts python3's static server on 127.0.0.1 (a free port) and
// resolves to {url, close, requests, sent}: requests lists the paths asked
// for, sent those answered 200 (with the file's bytes; 304s send none).
export function serve(dir) {
	return new Promise((resolve, reject) => {
		const p = spawn("python3", ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir], {
			stdio: ["ignore", "pipe", "pipe"],
		});
		const requests = [];
		const sent = [];
		let started = false;
		const onData = (buf) => {
			const s = buf.toString();
			for (const line of s.split("\n")) {
				const m = /Serving HTTP on \S+ port (\d+)/.exec(line);
				if (m && !started) {
					started = true;
					resolve({
						url: `http://127.0.0.1:${m[1]}/`,
						requests,
						sent,
						close: () => new Promise((r) => (p.exitCode !== null ? r() : (p.once("exit", r), p.kill()))),
					});
				}
				const g = /"GET (\S+) HTTP\/[\d.]+" (\d+)/.exec(line);
				if (g) {
					requests.push(g[1]);
					if (g[2] === "200") {
						sent.push(g[1]);
					}
				}
			}
		};
		p.stdout.on("data", onData);
		p.stderr.on("data", onData); // the access log goes to stderr
		p.on("error", reject);
		p.on("exit", (code) => {
			if (!started) {
				reject(new Error(`python3 -m http.server exited with ${code}`));
			}
		});
	});
}

// launch starts headless Chromium (Debian's /usr/bin/chromium) with a
// fresh profile. MOTE_CHROMIUM overrides the binary.
export async function launch() {
	const profile = mkdtempSync(path.join(tmpdir(), "mote-chromium-"));
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: process.env.MOTE_CHROMIUM || "/usr/bin/chromium",
		headless: true,
		viewport: { width: 1000, height: 860 },
		args: [
			"--headless",
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
		],
	});
	const close = async () => {
		await context.close();
		rmSync(profile, { recursive: true, force: true });
	};
	return { context, close };
}

// watch records a page's console errors and page errors (the tests fail on
// them) and prints its console when MOTE_WEB_DEBUG is set.
export function watch(page) {
	const errors = [];
	page.on("console", (m) => {
		if (process.env.MOTE_WEB_DEBUG) {
			console.error(`[page ${m.type()}] ${m.text()}`);
		}
		if (m.type() === "error") {
			errors.push(`${m.text()} (${m.location().url})`);
		}
	});
	page.on("pageerror", (e) => errors.push(String(e)));
	return errors;
}

// ready waits until the page has a model loaded (#generate enabled).
export async function ready(page, timeout = 60000) {
	await page.waitForSelector("#generate:not([disabled])", { timeout });
}

// setControls fills the sampling controls and the prompt.
export async function setControls(page, { prompt, temperature, topp, seed, maxTokens }) {
	if (prompt !== undefined) await page.fill("#prompt", prompt);
	if (temperature !== undefined) await page.fill("#temperature", String(temperature));
	if (topp !== undefined) await page.fill("#top-p", String(topp));
	if (seed !== undefined) await page.fill("#seed", String(seed));
	if (maxTokens !== undefined) await page.fill("#max-tokens", String(maxTokens));
}

// counter reads #status's data-loads or data-runs: finished loads and
// generations.
export const counter = (page, name) => page.$eval("#status", (s, n) => Number(s.dataset[n]), name);

// until waits for counter name to pass n.
export async function until(page, name, n, timeout = 120000) {
	await page.waitForFunction(([k, v]) => Number(document.querySelector("#status").dataset[k]) > v, [name, n], {
		timeout,
		polling: 20,
	});
}

// loading runs action (which starts a load) and waits for the load to end.
export async function loading(page, action, timeout = 120000) {
	const n = await counter(page, "loads");
	await action();
	await until(page, "loads", n, timeout);
}

// generate presses #generate and waits for the generation to end; it
// returns #output's text and #status's data.
export async function generate(page, timeout = 120000) {
	const n = await counter(page, "runs");
	await page.click("#generate");
	await until(page, "runs", n, timeout);
	return page.evaluate(() => {
		const s = document.querySelector("#status");
		return {
			output: document.querySelector("#output").textContent,
			state: s.dataset.state,
			tokPerSec: Number(s.dataset.tokS),
			ttftMs: Number(s.dataset.ttftMs),
			status: s.textContent,
			error: document.querySelector("#error").textContent,
		};
	});
}
