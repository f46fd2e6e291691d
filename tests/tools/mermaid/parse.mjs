// Parses mermaid diagrams with mermaid's own parser (the npm package, under jsdom for the DOM it
// wants) and prints, for each, what it understood as JSON: {"type", "nodes": [{id, label}],
// "edges": [{from, to, label}]}, labels with mermaid's entity codes decoded. Exits 1 with the
// parser's message when a diagram does not parse. Usage: node parse.mjs FILE... (the text of one
// diagram each, without the markdown fence).
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const name of ["DOMParser", "Element", "HTMLElement", "Node", "SVGElement"])
	globalThis[name] ??= dom.window[name];
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

// mermaid replaces "#quot;" by "ﬂ°quot¶ß" and "#60;" by "ﬂ°°60¶ß" before parsing, and puts the
// characters back when it draws
const decode = (text) =>
	text.replace(/ﬂ°°(\d+)¶ß/g, (_, code) => String.fromCodePoint(Number(code)))
		.replace(/ﬂ°(\w+)¶ß/g, (_, name) => ({ quot: '"', amp: "&", lt: "<", gt: ">", nbsp: "\u00a0" })[name] ?? `&${name};`);

let failed = false;
const results = [];
for (const file of process.argv.slice(2)) {
	const text = readFileSync(file, "utf8");
	try {
		const parsed = await mermaid.parse(text);
		const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
		const db = diagram.db;
		const vertices = db.getVertices ? [...db.getVertices().values()] : [];
		const edges = db.getEdges ? db.getEdges() : [];
		results.push({
			file,
			type: parsed.diagramType,
			nodes: vertices.map((v) => ({ id: v.id, label: decode(v.text ?? "") })),
			edges: edges.map((e) => ({ from: e.start, to: e.end, label: decode(e.text ?? "") })),
		});
	} catch (error) {
		failed = true;
		console.error(`${file}: mermaid does not parse it: ${error.message ?? error}`);
	}
}
console.log(JSON.stringify(results));
process.exit(failed ? 1 : 0);
