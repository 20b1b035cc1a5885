// Differential test of the SIMD kernels in Chromium: core's tests, built
// for js with -tags mote_simd (dist/webtest/core.test.wasm, by
// ./build.sh test), run on a page (coretest.html) with the kernel module
// wired as the web page wires it. TestFastKernelsMatchRef compares every
// SIMD kernel with its plain-Go twin on awkward sizes: SIMD == pure Go in
// V8. (^Test: the fuzz targets' seed corpora need a file system.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as L from "./lib.mjs";

test("core's Fast, Quant and Forward tests pass in Chromium with the SIMD kernels", async () => {
	const dir = mkdtempSync(path.join(tmpdir(), "mote-coretest-"));
	copyFileSync(path.join(L.dist, "webtest", "core.test.wasm"), path.join(dir, "core.test.wasm"));
	copyFileSync(path.join(L.webDir, "kernels.wasm"), path.join(dir, "kernels.wasm"));
	copyFileSync(path.join(L.webDir, "wasm_exec.js"), path.join(dir, "wasm_exec.js"));
	copyFileSync(path.join(L.root, "web", "test", "coretest.html"), path.join(dir, "coretest.html"));
	const srv = await L.serve(dir);
	const browser = await L.launch();
	try {
		const page = await browser.context.newPage();
		const lines = [];
		page.on("console", (m) => lines.push(m.text()));
		await page.goto(srv.url + "coretest.html?run=" + encodeURIComponent("^Test.*(Fast|Quant|Forward)"));
		const r = await page.evaluate(() => window.coreTest);
		const log = lines.join("\n");
		if (process.env.MOTE_WEB_DEBUG) {
			console.log(log);
		}
		assert.ok(r.simdImports.length > 0, "core.test.wasm imports no SIMD kernels: not built with -tags mote_simd");
		assert.equal(r.code, 0, log);
		assert.match(log, /^--- PASS: TestFastKernelsMatchRef /m, log);
		assert.match(log, /^--- PASS: TestForward/m, log);
		assert.match(log, /^--- PASS: TestQuant/m, log);
		assert.match(log, /^PASS$/m, log);
		assert.doesNotMatch(log, /--- (FAIL|SKIP)/, log);
	} finally {
		await browser.close();
		await srv.close();
	}
});
