/* Opens one HTML report in headless Chromium (Debian's /usr/bin/chromium, driven by puppeteer-core)
 * and prints what the test needs to know of it as JSON on stdout: the console errors and page
 * errors, every request that was not the file itself, each table's rows as drawn (type, each cell's
 * value and text), the order of a table's rows after clicks on a column header, the retaining path
 * graphs (nodes, edges, signatures), the cycle rings, the colours in dark mode and in print; it
 * writes screenshots (light, dark) and a PDF of the printed page.
 *
 * node check_page.js PAGE.html OUT_PREFIX TABLE COLUMN
 *   OUT_PREFIX: OUT_PREFIX.png, OUT_PREFIX-dark.png and OUT_PREFIX.pdf are written
 *   TABLE, COLUMN: the table (data-table) and column (data-key) whose header is clicked twice
 * CHROMIUM overrides the browser's path. Exits 2 when the browser cannot be started. */
"use strict";
const path = require("path");
const puppeteer = require("puppeteer-core");

async function main() {
	const [page_file, out_prefix, table, column] = process.argv.slice(2);
	if (!column) {
		process.stderr.write("usage: node check_page.js PAGE.html OUT_PREFIX TABLE COLUMN\n");
		process.exit(2);
	}
	const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
	let browser;
	try {
		browser = await puppeteer.launch({
			executablePath,
			headless: true,
			args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
		});
	} catch (error) {
		process.stderr.write(`check_page: cannot start ${executablePath}: ${error.message}\n`);
		process.exit(2);
	}
	const facts = {console: [], page_errors: [], requests: []};
	const url = "file://" + path.resolve(page_file);
	try {
		const page = await browser.newPage();
		page.on("console", (message) => {
			if (message.type() === "error" || message.type() === "warn" || message.type() === "warning")
				facts.console.push(`${message.type()}: ${message.text()}`);
		});
		page.on("pageerror", (error) => facts.page_errors.push(String(error && error.message || error)));
		page.on("request", (request) => {
			if (request.url() !== url)
				facts.requests.push(request.url());
		});
		await page.setViewport({width: 1280, height: 900});
		const pageShot = async () => {
			const height = await page.evaluate(() => document.documentElement.scrollHeight);
			return height <= 15000 ? {fullPage: true}
				: {clip: {x: 0, y: 0, width: 1280, height: 15000}, captureBeyondViewport: true};
		};
		await page.goto(url, {waitUntil: "load"});
		await page.waitForSelector("body[data-rendered=\"true\"]", {timeout: 15000});

		facts.title = await page.title();
		facts.tables = await page.evaluate(() => {
			const tables = {};
			for (const table of document.querySelectorAll("table[data-table]")) {
				tables[table.dataset.table] = [...table.tBodies[0].rows].map((row) => {
					const cells = {};
					for (const cell of row.cells) {
						const shown = cell.querySelector(".value") || cell;
						cells[cell.dataset.key] = {value: cell.dataset.value, text: shown.textContent,
							bar: cell.querySelector(".bar") ? parseFloat(cell.querySelector(".bar").style.width) : null};
					}
					return {type: row.dataset.type === undefined ? null : row.dataset.type, cells};
				});
			}
			return tables;
		});
		facts.html_elements = await page.evaluate(() =>
			[...new Set([...document.querySelectorAll("*")].map((e) => e.localName))].sort());

		facts.text = await page.evaluate(() => document.body.innerText);
		/* the page as it opens, before any click (a long page: its first 15,000 pixels, as far
		   as Chromium captures at once) */
		await page.screenshot({path: out_prefix + ".png", ...(await pageShot())});

		/* sorting by a click, then the other way by a second one */
		const selector = `table[data-table="${table}"] th[data-key="${column}"] button`;
		const order = () => page.evaluate((name, key) => {
			const t = document.querySelector(`table[data-table="${name}"]`);
			return {
				sort: t.querySelector(`th[data-key="${key}"]`).getAttribute("aria-sort"),
				values: [...t.tBodies[0].rows].map((row) => row.querySelector(`td[data-key="${key}"]`).dataset.value),
				types: [...t.tBodies[0].rows].map((row) => row.dataset.type === undefined ? null : row.dataset.type),
			};
		}, table, column);
		facts.sorting = {column, before: await order()};
		await page.click(selector);
		facts.sorting.first_click = await order();
		await page.click(selector);
		facts.sorting.second_click = await order();

		facts.graphs = await page.evaluate(() => [...document.querySelectorAll("section.type-paths")].map((section) => {
			const svg = section.querySelector("svg.path-graph");
			const box = svg ? svg.getBoundingClientRect() : null;
			return {
				type: section.dataset.type,
				svg: !!svg,
				width: box ? box.width : 0,
				height: box ? box.height : 0,
				nodes: svg ? [...svg.querySelectorAll("g.node")].map((node) => ({
					label: node.querySelector("text.step").textContent,
					root: node.classList.contains("root"),
					target: node.classList.contains("target"),
					signatures: [...node.querySelectorAll("text.signature")].map((t) => t.textContent),
				})) : [],
				edges: svg ? [...svg.querySelectorAll("g.edge")].map((edge) => ({
					from: edge.dataset.from, to: edge.dataset.to, count: Number(edge.dataset.count),
					retained: Number(edge.dataset.retained), label: edge.querySelector("text").textContent,
				})) : [],
			};
		}));
		facts.rings = await page.evaluate(() => [...document.querySelectorAll("svg.ring")].map((svg) => ({
			signature: svg.dataset.signature,
			steps: [...svg.querySelectorAll("text.step")].map((t) => t.textContent),
			captions: [...svg.querySelectorAll("text.caption")].map((t) => t.textContent),
		})));
		facts.icicle = await page.evaluate(() => [...document.querySelectorAll("svg.icicle g.cell")].map((cell) => ({
			name: cell.dataset.name, bytes: Number(cell.dataset.bytes),
		})));
		facts.footer = await page.evaluate(() => {
			const footer = document.querySelector("footer");
			return footer ? footer.textContent : null;
		});
		facts.header = await page.evaluate(() => {
			const h1 = document.querySelector("h1");
			return h1 ? h1.textContent : null;
		});

		const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
		facts.background_light = await background();
		await page.emulateMediaFeatures([{name: "prefers-color-scheme", value: "dark"}]);
		facts.background_dark = await background();
		await page.screenshot({path: out_prefix + "-dark.png", ...(await pageShot())});
		await page.emulateMediaType("print");
		facts.background_print = await background();
		await page.pdf({path: out_prefix + ".pdf", format: "A4", printBackground: true, timeout: 180000});
		facts.screenshots = [out_prefix + ".png", out_prefix + "-dark.png", out_prefix + ".pdf"];
	} finally {
		await browser.close();
	}
	process.stdout.write(JSON.stringify(facts) + "\n");
}

main().catch((error) => {
	process.stderr.write(`check_page: ${error.stack || error}\n`);
	process.exit(1);
});
